"""The library's public API type-checks: mypy with the settings of pyproject.toml.

Buffers are typed with circuitpython_typing's ReadableBuffer/WriteableBuffer,
imported only under TYPE_CHECKING (MicroPython has no typing module), and
every annotation that names them is a string, so a board never evaluates one.
"""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "lib", "microws")


def test_mypy_passes_on_the_library():
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", "lib/microws"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout


def test_mypy_really_checks_the_annotations(tmp_path):
    # The same settings fail on wrong calls, so the pass above means
    # something: a non-buffer where a buffer goes is caught too (without the
    # stand-ins of host_tests/typings, ReadableBuffer would accept anything).
    bad = tmp_path / "bad.py"
    bad.write_text("from microws.sansio import encode_frame\nencode_frame('text', 12)\n"
                   "from microws.sansio import EventConnection\nEventConnection().receive_data(3.5)\n"
                   "encode_frame(1, bytearray(3))\nencode_frame(2, memoryview(b'x'))\n")
    env = dict(os.environ, MYPYPATH=os.path.join(ROOT, "lib"))  # with mypy_path's stand-ins
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", str(bad)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
    )
    assert done.returncode == 1
    assert 'Argument 1 to "encode_frame" has incompatible type "str"; expected "int"' in done.stdout
    assert 'Argument 2 to "encode_frame" has incompatible type "int"' in done.stdout
    assert 'Argument 1 to "receive_data" of "EventConnection" has incompatible type "float"' in done.stdout
    assert "Found 3 errors" in done.stdout  # bytearray and memoryview are buffers


def test_typing_is_never_imported_at_run_time_on_a_board():
    # Every typing import sits under `if TYPE_CHECKING:`, after a guarded
    # `from typing import TYPE_CHECKING`; no `from __future__ import
    # annotations` (MicroPython raises ImportError on it).
    for name in sorted(os.listdir(LIB)):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(LIB, name), encoding="utf-8") as f:
            source = f.read()
        assert "__future__" not in source, name
        for match in re.finditer(r"^( *)(from|import) (typing|circuitpython_typing)\b.*$", source, re.M):
            line = match.group(0)
            if line.strip() == "from typing import TYPE_CHECKING":
                before = source[: match.start()].rstrip().splitlines()[-1]
                assert before == "try:", "%s: unguarded %r" % (name, line)
            else:
                assert match.group(1), "%s: top-level %r" % (name, line)
                block = source[: match.start()].rstrip().splitlines()
                opener = [b for b in block if b and not b.startswith(" ")][-1]
                assert opener == "if TYPE_CHECKING:", "%s: %r outside if TYPE_CHECKING" % (name, line)
