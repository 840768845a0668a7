#!/usr/bin/env bash
# Install livestate with its development extras into .venv, then lint, type-check and test it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v dot >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq graphviz >/dev/null) || echo "graphviz (dot) not installed: SVG checks will be skipped"
fi
if ! command -v redis-server >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq redis-server >/dev/null) || echo "redis-server not installed: the Redis store tests will fail"
fi
python3 -m venv .venv
# editable_mode=compat: a plain path entry in a .pth file. The default (an import hook) hides the package
# from mypy, so a project type-checking against this checkout would not find livestate.
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]' --config-settings editable_mode=compat
export PATH="$PWD/.venv/bin:$PATH"
ruff check .
ruff format --check .
mypy --strict livestate
# examples/ as a user's project sees livestate: from outside the checkout, so only the installed package
# (and its py.typed) can satisfy the imports.
outside="$(mktemp -d)"
(cd "$outside" && mypy --strict --cache-dir "$outside/.mypy_cache" "$OLDPWD/examples/")
rm -rf "$outside"
pytest --cov=livestate --cov-branch --cov-report=term:skip-covered "$@"
