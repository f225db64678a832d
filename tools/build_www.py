"""Compress the dashboard: writes NAME.gz next to every file of firmware/www/.

The device serves NAME.gz (with Content-Encoding: gzip) to browsers that
accept gzip, so the .gz files are what goes onto a board. The output is
deterministic: gzip level 9, mtime 0, no file name in the header, OS byte
"unknown" -- the same source gives the same bytes on every machine that has
the same zlib.

    python3 tools/build_www.py [WWW_DIR] [--check-budget [BYTES]]

--check-budget exits 1 when the compressed total of the page (every .gz
built from WWW_DIR) is over BYTES (default 12288, about what a board serves at once). Standard library only.
"""

import argparse
import os
import struct
import sys
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WWW_DIR = os.path.join(ROOT, "firmware", "www")
DEFAULT_BUDGET = 12288


def gzip_bytes(data):
    """gzip member of data: level 9, mtime 0, no name, XFL 2 (best), OS 255 (unknown)."""
    header = b"\x1f\x8b\x08\x00" + struct.pack("<I", 0) + b"\x02\xff"
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS, 9)
    body = compressor.compress(data) + compressor.flush()
    return header + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def sources(www_dir):
    """Names of the files to compress: regular files, not .gz (nor a leftover .gz.tmp), not hidden, sorted."""
    return sorted(
        name
        for name in os.listdir(www_dir)
        if not name.endswith((".gz", ".gz.tmp"))
        and not name.startswith(".")
        and os.path.isfile(os.path.join(www_dir, name))
    )


def build(www_dir=WWW_DIR):
    """Write NAME.gz for every source file; returns [(name, raw_size, gz_size)].

    A .gz whose bytes are already right is left untouched (keeps its mtime);
    otherwise it is written to a temporary file and renamed into place.
    """
    results = []
    for name in sources(www_dir):
        path = os.path.join(www_dir, name)
        with open(path, "rb") as f:
            data = f.read()
        packed = gzip_bytes(data)
        target = path + ".gz"
        try:
            with open(target, "rb") as f:
                current = f.read()
        except OSError:
            current = None
        if current != packed:
            tmp = target + ".tmp"
            with open(tmp, "wb") as f:
                f.write(packed)
            os.replace(tmp, target)
        results.append((name, len(data), len(packed)))
    return results


def orphans(www_dir=WWW_DIR):
    """NAME.gz files whose NAME is gone: the server would still serve them."""
    return sorted(
        name
        for name in os.listdir(www_dir)
        if name.endswith(".gz") and not os.path.exists(os.path.join(www_dir, name[:-3]))
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description="gzip the files of firmware/www/ for the device")
    parser.add_argument("www_dir", nargs="?", default=WWW_DIR, help="folder to build (default: firmware/www)")
    parser.add_argument(
        "--check-budget",
        nargs="?",
        type=int,
        const=DEFAULT_BUDGET,
        metavar="BYTES",
        help="exit 1 when the compressed total is over BYTES (default %d)" % DEFAULT_BUDGET,
    )
    args = parser.parse_args(argv)

    results = build(args.www_dir)
    raw_total = sum(r for _, r, _ in results)
    gz_total = sum(g for _, _, g in results)
    width = max([len(n) for n, _, _ in results] + [5])
    for name, raw, gz in results:
        print("%-*s %8d B -> %7d B gzip (%.0f%%)" % (width, name, raw, gz, 100.0 * gz / max(raw, 1)))
    print("%-*s %8d B -> %7d B gzip" % (width, "total", raw_total, gz_total))
    for name in orphans(args.www_dir):
        print("warning: %s has no source file next to it (stale? the device would still serve it)" % name)
    if args.check_budget is not None:
        if gz_total > args.check_budget:
            print("over budget: %d B gzip > %d B" % (gz_total, args.check_budget), file=sys.stderr)
            return 1
        print("within budget: %d B gzip <= %d B" % (gz_total, args.check_budget))
    return 0


if __name__ == "__main__":
    sys.exit(main())
