#!/usr/bin/env bash
# Runs every test: the README's test command. Installs what the tests need
# first (Python packages, the MicroPython WebAssembly port from npm); when
# they are already there this takes a second.
# Extra arguments go to pytest, e.g.  bash tools/test.sh -k handshake
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -r host_tests/requirements.txt

mp=host_tests/micropython
if [ ! -d "$mp/node_modules" ] || [ "$mp/package-lock.json" -nt "$mp/node_modules" ]; then
    npm ci --prefix "$mp" --no-audit --no-fund --loglevel=error
fi

# the dashboard's .gz is rebuilt from the page every run, so it never goes stale
python3 tools/build_www.py --check-budget

exec python3 -m pytest host_tests "$@"
