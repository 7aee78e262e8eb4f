#!/usr/bin/env bash
# Run every test tier (unit, integration, e2e, browser, chaos, model, deploy); extra arguments go to pytest,
# e.g. scripts/test.sh tests/unit, or scripts/test.sh -m "not browser".
set -euo pipefail
cd "$(dirname "$0")/.."

# Tools some tiers need, installed from Debian when missing and we are root (as on CI). A test
# whose tool is still missing fails (it never skips), saying how to install it.
apt_updated=""
apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "test: $1 is missing; install Debian's $2 (as root) or those tests fail" >&2
        return 0
    fi
    echo "test: installing Debian's $2: $1 is missing" >&2
    if [ -z "$apt_updated" ]; then
        apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

# Browser tests drive Debian's Chromium (/usr/bin/chromium), when there are browser tests.
ensure_chromium() {
    if compgen -G "tests/browser/test_*.py" >/dev/null && [ ! -x /usr/bin/chromium ]; then
        apt_install "chromium, for the browser tests," chromium
    fi
}

# Tests of the PostgreSQL event store start their own server from Debian's binaries.
ensure_postgresql() {
    if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
        apt_install "PostgreSQL, for the event-store tests," postgresql
    fi
}

# TLC (tests/model) runs on a Java runtime.
ensure_java() {
    if compgen -G "tests/model/test_*.py" >/dev/null && ! command -v java >/dev/null; then
        apt_install "java, for TLC in tests/model," default-jre-headless
    fi
}

# The deployment tier (tests/deploy) makes hosts of its own: network namespaces, veth, a bridge
# (ip) and slow links (tc), from Debian's iproute2; it needs root.
ensure_iproute2() {
    if compgen -G "tests/deploy/test_*.py" >/dev/null && ! { command -v ip && command -v tc; } >/dev/null; then
        apt_install "ip and tc, for the deployment tier," iproute2
    fi
}

bash scripts/setup.sh --dev
ensure_chromium
ensure_postgresql
ensure_java
ensure_iproute2
if [ "$#" -gt 0 ]; then
    exec .venv/bin/python -m pytest -q "$@"
fi

# Every tier. TLC (tests/model) is CPU-bound and runs on its own for minutes, while most of the
# other tiers wait on real sites, deadlines and browsers: the two run side by side, and the
# model tier's report follows the others'. Either failing fails the run.
model_log="$(mktemp)"
.venv/bin/python -m pytest -q -m model >"$model_log" 2>&1 &
model_pid=$!
status=0
.venv/bin/python -m pytest -q --durations=30 -m "not model" || status=$?
model_status=0
wait "$model_pid" || model_status=$?
echo "--- the model tier (tests/model), run alongside ---"
cat "$model_log"
rm -f "$model_log"
[ "$status" -eq 0 ] && [ "$model_status" -eq 0 ]
