#!/usr/bin/env bash
# Create .venv (Python >= 3.11) when missing and install the pinned requirements into it.
#   scripts/setup.sh          runtime requirements (requirements.txt)
#   scripts/setup.sh --dev    and the test ones (requirements-dev.txt)
# Safe to run again: an up-to-date .venv only costs pip's quick check.
set -euo pipefail
cd "$(dirname "$0")/.."

is_new_enough() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }

if ! is_new_enough .venv/bin/python; then
    python=""
    for candidate in python3.11 python3.12 python3.13 python3; do
        if command -v "$candidate" >/dev/null && is_new_enough "$candidate"; then
            python="$candidate"
            break
        fi
    done
    if [ -z "$python" ]; then
        echo "setup: Python 3.11 or newer is needed (python3.11 or python3 on PATH)" >&2
        exit 1
    fi
    if ! "$python" -m venv --clear .venv; then
        # Debian splits venv/ensurepip out of the interpreter package.
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            "$python" -m venv --clear .venv
        else
            echo "setup: '$python -m venv' failed; install your distribution's python3-venv" >&2
            exit 1
        fi
    fi
fi

requirements=requirements.txt
if [ "${1:-}" = "--dev" ]; then
    requirements=requirements-dev.txt
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
