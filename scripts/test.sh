#!/usr/bin/env bash
# Run every test tier (unit, integration, e2e, browser); extra arguments go to pytest,
# e.g. scripts/test.sh tests/unit, or scripts/test.sh -m "not browser".
set -euo pipefail
cd "$(dirname "$0")/.."

# Browser tests drive Debian's Chromium (/usr/bin/chromium). Install it only when there are
# browser tests, it is missing, and we are root (as on CI); otherwise do nothing.
ensure_chromium() {
    if ! compgen -G "tests/browser/test_*.py" >/dev/null || [ -x /usr/bin/chromium ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "test: /usr/bin/chromium is missing; install Debian's chromium for browser tests" >&2
        return 0
    fi
    echo "test: installing Debian's chromium for the browser tests" >&2
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
            >/dev/null; }; then
        echo "test: could not install chromium; the browser tests will say so" >&2
    fi
}

# Tests of the PostgreSQL event store start their own server from Debian's binaries.
ensure_postgresql() {
    if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "test: PostgreSQL is missing; install Debian's postgresql for the store tests" >&2
        return 0
    fi
    echo "test: installing Debian's postgresql for the event-store tests" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

bash scripts/setup.sh --dev
ensure_chromium
ensure_postgresql
exec .venv/bin/python -m pytest -q "$@"
