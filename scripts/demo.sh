#!/usr/bin/env bash
# Install livestate with the websockets driver into .venv and run the demo against the embedded fake server.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[websockets,speed]' --config-settings editable_mode=compat
exec .venv/bin/livestate demo "$@"
