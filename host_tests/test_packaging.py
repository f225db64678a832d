"""The ways to get the library: mip (package.json), pip (pyproject.toml),
freezing (manifest.py). One version everywhere."""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import venv

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "lib", "microws")
LIB_FILES = sorted(f for f in os.listdir(LIB) if f.endswith(".py"))


def _version():
    with open(os.path.join(LIB, "__init__.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["__version__"]:
            return node.value.value
    raise AssertionError("no __version__ in lib/microws/__init__.py")


@pytest.fixture(scope="module")
def package():
    with open(os.path.join(ROOT, "package.json"), encoding="utf-8") as f:
        return json.load(f)


# --- mip -------------------------------------------------------------------------


def test_package_json_lists_every_library_file_and_only_those(package):
    urls = package["urls"]
    assert [target for target, _ in urls] == ["microws/" + f for f in LIB_FILES]
    for target, source in urls:
        # relative to package.json, which is at the repository root
        assert not source.startswith(("http:", "https:", "github:", "/")), source
        assert os.path.isfile(os.path.join(ROOT, source)), source
        assert source == "lib/" + target


def test_license_is_mit_everywhere(package):
    with open(os.path.join(ROOT, "LICENSE"), encoding="utf-8") as f:
        text = f.read()
    assert text.startswith("MIT License\n\nCopyright (c) 2026 the microws authors\n")
    assert "THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND" in text
    assert package["license"] == "MIT"
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        assert '\nlicense = {text = "MIT"}' in f.read()


def test_package_json_version_and_deps(package):
    assert package["version"] == _version()
    assert package.get("deps", []) == []  # the library needs nothing


class _FakeTransport:
    """The board side of mpremote's mip: a dict of files."""

    def __init__(self):
        self.files = {}
        self.dirs = {"/lib"}

    def fs_exists(self, path):
        return path in self.dirs or path in self.files

    def fs_mkdir(self, path):
        self.dirs.add(path)

    def fs_writefile(self, path, data, progress_callback=None):
        assert path.rsplit("/", 1)[0] in self.dirs, path
        self.files[path] = data

    def fs_hashfile(self, path, algo):
        raise FileNotFoundError(path)


def test_mip_resolves_the_relative_urls_into_lib_microws(package, capsys):
    # mpremote's own mip (what `mpremote mip install package.json` runs; it
    # resolves relative URLs like the board's mip.install("github:...") does)
    mip = pytest.importorskip("mpremote.mip")
    board = _FakeTransport()
    mip._install_json(board, os.path.join(ROOT, "package.json"), "unused-index", "/lib", None, True)
    assert sorted(board.files) == ["/lib/microws/" + f for f in LIB_FILES]
    for name in LIB_FILES:
        with open(os.path.join(LIB, name), "rb") as f:
            assert board.files["/lib/microws/" + name] == f.read()
    # from GitHub: each relative path is fetched next to package.json
    base = "github:OWNER/microws"
    for _, source in package["urls"]:
        url = mip._rewrite_url(base + "/" + source, "v" + _version())
        assert url == "https://raw.githubusercontent.com/OWNER/microws/v%s/%s" % (_version(), source)


def _readme_section(title):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    start = text.index("\n### " + title + "\n")
    end = text.index("\n#", start + 1)
    return text[start:end]


def test_readme_mip_section_names_no_made_up_owner():
    mip_section = _readme_section("mip: the library only")
    assert "OWNER" not in mip_section
    # the clone's package.json by path, and the user's own fork marked as such
    assert "mpremote mip install /path/to/microws/package.json" in mip_section
    assert "github:<you>/microws" in mip_section and "your GitHub account" in mip_section


def test_mip_installs_from_the_clone_by_absolute_path_from_anywhere(tmp_path, monkeypatch):
    # `mpremote mip install /path/to/microws/package.json`, run in another folder
    mip = pytest.importorskip("mpremote.mip")
    monkeypatch.chdir(tmp_path)
    board = _FakeTransport()
    mip._install_package(board, os.path.join(ROOT, "package.json"), "unused-index", "/lib", None, True)
    assert sorted(board.files) == ["/lib/microws/" + f for f in LIB_FILES]


def test_manifest_points_at_steps_that_exist():
    with open(os.path.join(ROOT, "manifest.py"), encoding="utf-8") as f:
        text = f.read()
    for path in re.findall(r"[\w./-]+\.md", text):
        assert os.path.isfile(os.path.join(ROOT, path)), path
    title = re.search(r'README\.md, section "([^"]+)"', text.replace("\n# ", " ")).group(1)
    assert "make -C ports/esp8266" in _readme_section(title)


# --- pip ---------------------------------------------------------------------------


def test_pyproject_reads_the_version_from_the_library():
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    assert 'dynamic = ["version"]' in text
    assert 'version = {attr = "microws.__version__"}' in text
    assert "dependencies = []" in text


HANDSHAKE = r"""
import importlib.metadata, os, sys
import microws
from microws.handshake import accept
from microws.sansio import parse_request
head = (b"GET /ws HTTP/1.1\r\nHost: board\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
response = accept(parse_request(head))
assert response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n"), response
assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in response, response
print("FILE", microws.__file__)
print("VERSION", importlib.metadata.version("microws"), microws.__version__)
print("TYPED", os.path.exists(os.path.join(os.path.dirname(microws.__file__), "py.typed")))
print("LICENSE", importlib.metadata.metadata("microws")["License"])
files = importlib.metadata.files("microws")
print("LICENSEFILE", any(f.name == "LICENSE" for f in files))
print("STUB", any(f.name == "__init__.pyi" for f in files))
from microws import Server
print("SERVER", Server.__module__)
"""


def test_pip_install_into_a_fresh_venv_then_handshake(tmp_path):
    # A plain `pip install .` builds in an isolated environment and downloads
    # setuptools for it (from PyPI: network). Offline instead, and with nothing
    # from outside this test venv: the wheel is built here, by this venv's own
    # pip, setuptools and wheel (host_tests/requirements.txt; setuptools < 70.1
    # needs `wheel` for bdist_wheel), then installed with --no-index into a
    # fresh venv that sees no other packages. A venv made from this one has the
    # base interpreter's site-packages, not ours, so it must not build.
    pytest.importorskip("setuptools")
    source = tmp_path / "src"  # a copy: the build writes build/ and egg-info next to the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(os.path.join(ROOT, name), source / name)
    shutil.copytree(LIB, source / "lib" / "microws", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-index", "--no-build-isolation",
                            "--no-deps", "--no-cache-dir", "--disable-pip-version-check",
                            "-w", str(dist), str(source)],
                           capture_output=True, text=True, timeout=300, env=env)
    assert built.returncode == 0, built.stdout + built.stderr
    wheels = sorted(dist.glob("microws-*.whl"))
    assert [w.name for w in wheels] == ["microws-%s-py3-none-any.whl" % _version()]
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=False, with_pip=True)
    python = str(env_dir / ("Scripts" if os.name == "nt" else "bin") / "python")
    done = subprocess.run([python, "-m", "pip", "install", "--no-index", "--no-cache-dir",
                           "--disable-pip-version-check", str(wheels[0])],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Successfully installed microws-%s" % _version() in done.stdout
    ran = subprocess.run([python, "-c", HANDSHAKE], cwd=str(tmp_path), capture_output=True, text=True,
                         timeout=120, env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    lines = dict(line.split(" ", 1) for line in ran.stdout.splitlines())
    assert lines["FILE"].startswith(str(env_dir)), lines["FILE"]
    assert lines["VERSION"] == "%s %s" % (_version(), _version())
    assert lines["TYPED"] == "True"
    assert lines["LICENSE"] == "MIT"
    assert lines["LICENSEFILE"] == "True"
    assert lines["STUB"] == "True"
    assert lines["SERVER"] == "microws.server"


# --- freezing ------------------------------------------------------------------------


def _manifest_calls():
    """The calls in manifest.py, evaluated with stand-ins of MicroPython's
    manifest functions: [(function, args, kwargs)]."""
    calls = []

    def record(name):
        return lambda *args, **kwargs: calls.append((name, args, kwargs))

    scope = {name: record(name) for name in ("package", "module", "require", "include", "freeze")}
    path = os.path.join(ROOT, "manifest.py")
    with open(path, encoding="utf-8") as f:
        exec(compile(f.read(), path, "exec"), scope)
    return calls


def test_manifest_freezes_the_library_and_every_firmware_module():
    calls = _manifest_calls()
    assert ("package", ("microws",), {"base_path": "lib"}) in calls
    frozen = set()
    for name, args, kwargs in calls:
        base = os.path.join(ROOT, kwargs.get("base_path", "."))
        if name == "module":
            path = os.path.join(base, args[0])
            assert os.path.isfile(path), path
            frozen.add(os.path.relpath(path, ROOT))
        elif name == "package":
            path = os.path.join(base, args[0])
            assert os.path.isfile(os.path.join(path, "__init__.py")), path
            frozen.update(os.path.relpath(os.path.join(path, f), ROOT) for f in os.listdir(path) if f.endswith(".py"))
    firmware = {"firmware/" + f for f in os.listdir(os.path.join(ROOT, "firmware")) if f.endswith(".py")}
    # boot.py and main.py stay files on the board's flash (they are the entry points)
    assert frozen >= firmware - {"firmware/boot.py", "firmware/main.py"}
    assert not frozen & {"firmware/boot.py", "firmware/main.py"}
    assert {"firmware/sensors/__init__.py", "lib/microws/server.py"} <= frozen
