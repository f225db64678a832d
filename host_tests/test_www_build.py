"""The dashboard page (firmware/www/) and its build: gzip files, size budget, no external URL."""

import gzip
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("build_www", os.path.join(ROOT, "tools", "build_www.py"))
build_www = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_www)
WWW = os.path.join(ROOT, "firmware", "www")
PAGE = os.path.join(WWW, "index.html")
BUDGET = 12288  # tools/build_www.py DEFAULT_BUDGET

REQUIRED_IDS = {
    "state", "received-rate", "dropped", "device-rate", "rate-form", "rate-input", "rate-range",
    "rate-apply", "outputs", "info", "info-refresh", "status", "charts", "readonly", "device",
    "stale", "tiles", "ctl", "window", "export",
}
INFO_FIELDS = {"board", "fw", "mem_free", "uptime_s", "clients"}


@pytest.fixture(scope="module")
def built():
    return build_www.build(WWW)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_build_lists_every_source_file(built):
    names = [name for name, _, _ in built]
    assert "index.html" in names
    expected = sorted(
        n for n in os.listdir(WWW)
        if not n.endswith(".gz") and not n.startswith(".") and os.path.isfile(os.path.join(WWW, n))
    )
    assert names == expected


def test_every_file_has_a_fresh_gz(built):
    for name, raw_size, gz_size in built:
        source = read(os.path.join(WWW, name))
        packed = read(os.path.join(WWW, name + ".gz"))
        assert len(source) == raw_size and len(packed) == gz_size
        assert gzip.decompress(packed) == source, name + ".gz is stale"


def test_gz_is_deterministic(tmp_path):
    """Level 9, mtime 0, no file name: the same bytes every time."""
    (tmp_path / "a.html").write_bytes(b"<p>hello</p>" * 50)
    (tmp_path / "b.css").write_bytes(b"p{color:red}")
    (tmp_path / "old.txt.gz").write_bytes(b"not touched")
    first = build_www.build(str(tmp_path))
    assert [n for n, _, _ in first] == ["a.html", "b.css"]
    packed = (tmp_path / "a.html.gz").read_bytes()
    assert packed[:4] == b"\x1f\x8b\x08\x00"  # gzip, deflate, no FNAME/FEXTRA/FCOMMENT
    assert packed[4:8] == b"\x00\x00\x00\x00"  # mtime 0
    assert packed[8] == 2  # XFL: best compression
    assert b"a.html" not in packed
    assert build_www.build(str(tmp_path)) == first
    assert (tmp_path / "a.html.gz").read_bytes() == packed
    assert packed == build_www.gzip_bytes(b"<p>hello</p>" * 50)
    assert (tmp_path / "old.txt.gz").read_bytes() == b"not touched"  # .gz files are never sources
    assert build_www.orphans(str(tmp_path)) == ["old.txt.gz"]


def test_page_is_under_budget(built):
    total = sum(gz for _, _, gz in built)
    page = dict((n, gz) for n, _, gz in built)["index.html"]
    assert BUDGET == build_www.DEFAULT_BUDGET  # what tools/test.sh checks
    assert total <= BUDGET, "the gzip-compressed dashboard is %d B, over the %d B budget" % (total, BUDGET)
    assert page <= BUDGET


def test_cli_check_budget(tmp_path):
    (tmp_path / "index.html").write_bytes(os.urandom(3000))  # incompressible
    script = os.path.join(ROOT, "tools", "build_www.py")
    ok = subprocess.run([sys.executable, script, str(tmp_path), "--check-budget"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "index.html" in ok.stdout
    over = subprocess.run([sys.executable, script, str(tmp_path), "--check-budget", "1000"],
                          capture_output=True, text=True)
    assert over.returncode == 1
    assert "over budget" in over.stderr
    plain = subprocess.run([sys.executable, script, str(tmp_path)], capture_output=True, text=True)
    assert plain.returncode == 0


class PageParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = []
        self.fields = set()
        self.urls = []
        self.tags = []
        self.style = []
        self.script = []
        self._in = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids.append(a["id"])
        if "data-field" in a:
            self.fields.add(a["data-field"])
        for key in ("src", "href", "action", "poster", "data"):
            if a.get(key):
                self.urls.append(a[key])
        self._in = tag if tag in ("style", "script") else None

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "style":
            self.style.append(data)
        elif self._in == "script":
            self.script.append(data)


@pytest.fixture(scope="module")
def page():
    parser = PageParser()
    parser.feed(read(PAGE).decode("utf-8"))
    parser.close()
    return parser


def test_page_has_the_ids_the_tests_use(page):
    assert len(page.ids) == len(set(page.ids)), "duplicate ids"
    missing = REQUIRED_IDS - set(page.ids)
    assert not missing, "missing ids: %s" % sorted(missing)
    assert INFO_FIELDS <= page.fields
    for tag in ("html", "head", "body", "title", "main", "script", "style"):
        assert tag in page.tags


def test_page_is_self_contained(page):
    for url in page.urls:
        assert not re.match(r"(?i)\s*(https?:)?//", url), "external URL: " + url
    text = read(PAGE).decode("utf-8")
    assert not re.search(r"""(?i)(src|href)\s*=\s*["']?\s*(https?:)?//""", text)
    assert "//cdn" not in text.lower()
    css = "".join(page.style)
    assert "@import" not in css and "url(" not in css, "the CSS loads something"
    js = "".join(page.script)
    assert not re.search(r"""(?i)["'`]https?://""", js), "the script names an external URL"
    assert "importScripts" not in js and "import(" not in js
    # fetch only from the device itself, by a path (GET /status when the WebSocket fails)
    for target in re.findall(r"fetch\(\s*([^,)]*)", js):
        assert re.match(r'"/[^/]', target), "fetch of something not on the device: " + target
    # connects to the host and port the page came from, on /ws, ws:// or wss:// like the page
    assert "location.host" in js and '"/ws"' in js and '"wss://"' in js and '"ws://"' in js


def test_page_is_utf8_and_responsive(page):
    text = read(PAGE).decode("utf-8")
    assert re.search(r'<meta charset="utf-8">', text, re.I)
    assert 'name="viewport"' in text
    assert "prefers-color-scheme:dark" in text.replace(" ", "")
    assert 'aria-live="polite"' in text


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_page_script_parses(tmp_path, page):
    """A syntax error would leave a dead page: let node parse the inline script."""
    script = tmp_path / "page.js"
    script.write_text("".join(page.script), encoding="utf-8")
    result = subprocess.run(["node", "--check", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
