#!/usr/bin/env bash
# Run a local 4-site deployment until Ctrl-C; extra flags go to launcher.py
# (e.g. scripts/serve.sh --base-port 9000, or --sites 3).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python launcher.py --sites 4 "$@"
