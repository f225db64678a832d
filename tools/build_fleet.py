"""Build the fleet page's script: tools/fleet/www/fleet.js, from tools/fleet/src/
and the npm mqtt client, bundled and minified by esbuild.

The bundle is committed, so tools/fleet.py needs only Python. This tool makes
it again from the pinned packages (tools/fleet/package-lock.json; `npm ci`
first when node_modules/ is missing or older than the lock file). esbuild's
output is deterministic: the same sources and lock file give the same bytes.

    python3 tools/build_fleet.py            write tools/fleet/www/fleet.js
    python3 tools/build_fleet.py --check    exit 1 when the committed bundle is
                                            not what the build makes

Needs Node.js and npm. Standard library only.
"""

import argparse
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLEET = os.path.join(ROOT, "tools", "fleet")
BUNDLE = os.path.join(FLEET, "www", "fleet.js")
ENTRY = os.path.join("src", "main.js")
ESBUILD_ARGS = ["--bundle", "--minify", "--format=iife", "--platform=browser", "--target=es2020",
                "--legal-comments=eof", "--log-level=warning"]


def install():
    """npm ci in tools/fleet when its node_modules is missing or older than the lock file."""
    modules = os.path.join(FLEET, "node_modules")
    lock = os.path.join(FLEET, "package-lock.json")
    if os.path.isdir(modules) and os.path.getmtime(modules) >= os.path.getmtime(lock):
        return
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=FLEET, check=True)
    os.utime(modules)


def build(outfile):
    """Bundle src/main.js into outfile; returns its bytes."""
    install()
    esbuild = os.path.join(FLEET, "node_modules", ".bin", "esbuild")
    subprocess.run([esbuild, ENTRY, "--outfile=" + outfile] + ESBUILD_ARGS, cwd=FLEET, check=True)
    with open(outfile, "rb") as f:
        return f.read()


def check():
    """True when the committed bundle is byte for byte what the build makes."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = build(os.path.join(tmp, "fleet.js"))
    try:
        with open(BUNDLE, "rb") as f:
            committed = f.read()
    except OSError:
        committed = None
    return committed == fresh, len(fresh)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Build the fleet page's script (esbuild, npm mqtt).")
    parser.add_argument("--check", action="store_true", help="only compare the committed bundle with a fresh build")
    args = parser.parse_args(argv)
    if args.check:
        same, size = check()
        if not same:
            print("tools/fleet/www/fleet.js is not what tools/build_fleet.py makes: run it and commit the bundle",
                  file=sys.stderr)
            return 1
        print("tools/fleet/www/fleet.js is up to date (%d bytes)" % size)
        return 0
    size = len(build(BUNDLE))
    print("wrote %s (%d bytes)" % (os.path.relpath(BUNDLE, ROOT), size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
