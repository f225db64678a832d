"""custom.py: the user's sensors, commands and routes (firmware/extend.py),
and the README's example (examples/custom.py) run by the simulator on
CPython and under MicroPython's unix port."""
import asyncio
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from host_tests.processes import free_port, lines_until, micropython_command
import websockets

import extend
from app import App
from boardfile import check_board, load_board
from config import parse_config
from hardware import hardware

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(ROOT, "examples", "custom.py")
EXAMPLE_BOARD = os.path.join(ROOT, "examples", "host-custom.json")
WWW = os.path.join(ROOT, "firmware", "www")


@pytest.fixture(autouse=True)
def empty_registry():
    extend.clear()
    yield
    extend.clear()


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def example_app(lines=None):
    board = load_board("host-custom", os.path.join(ROOT, "examples"))
    config = parse_config({"board": "host-custom", "rate": 10}, board, "test")
    log = (lambda *a: lines.append(" ".join(str(x) for x in a))) if lines is not None else (lambda *a: None)
    return App(board, config, hardware(seed=1), www=WWW, log=log)


def command(app, obj, **kw):
    reply, change = app.device.handle_command(json.dumps(obj), **kw)
    return json.loads(reply)


def test_the_example_adds_a_sensor_a_command_and_routes():
    lines = []
    assert extend.load(EXAMPLE, lines.append)
    assert "custom: loaded" in lines[0] and "soil" in lines[0] and "beep" in lines[0]
    app = example_app()
    hello = json.loads(app.device.hello())
    assert {"name": "soil", "unit": "%", "label": "Soil moisture", "show": "chart"} in hello["sensors"]
    assert hello["commands"] == ["beep"]
    app.sample_once()
    soil = app.device.value("soil")
    assert 0 <= soil <= 100 and round(soil, 1) == soil  # decimals=1 from the decorator
    assert command(app, {"cmd": "beep", "ms": 200, "id": 3}) == {"t": "ack", "id": 3, "cmd": "beep",
                                                                   "beeped": 200, "times": 1}
    assert command(app, {"cmd": "beep", "ms": 5, "id": 4}) == {"t": "error", "id": 4,
                                                                 "error": "ms must be from 10 to 2000"}
    assert command(app, {"cmd": "beep", "id": 4})["error"] == "missing ms"
    assert command(app, {"cmd": "beep", "ms": 20.5})["error"] == "ms must be an integer"
    assert command(app, {"cmd": "beep", "ms": 20, "times": 9})["error"] == "times must be from 1 to 5"
    assert "read-only" in command(app, {"cmd": "beep", "ms": 20}, readonly=True)["error"]


def test_custom_routes_serve_http_and_websocket():
    extend.load(EXAMPLE, lambda *a: None)

    async def body():
        app = example_app()
        await app.start("127.0.0.1", 0)
        port = app.server.port
        try:
            app.sample_once()
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(None, lambda: urllib.request.urlopen(
                "http://127.0.0.1:%d/soil" % port, timeout=5).read())
            assert json.loads(answer) == {"soil": app.device.value("soil"), "unit": "%"}
            async with websockets.connect("ws://127.0.0.1:%d/ws/soil" % port) as ws:
                await ws.send("now?")
                assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"soil": app.device.value("soil")}
        finally:
            await app.stop()

    asyncio.run(asyncio.wait_for(body(), 20))


def test_a_route_that_raises_answers_500_or_1011_and_the_device_goes_on(tmp_path):
    path = write(tmp_path, "custom_routes.py", (
        "from extend import route\n"
        "@route('/bad')\n"
        "def bad(device, request):\n"
        "    raise RuntimeError('no page')\n"
        "@route('/later')\n"
        "async def later(device, request):\n"
        "    return {'seq': device.seq}\n"
        "@route('/ws/bad', websocket=True)\n"
        "async def bad_ws(device, ws):\n"
        "    await ws.receive()\n"
        "    raise ValueError('no stream')\n"))
    assert extend.load(path, lambda *a: None)

    async def body():
        lines = []
        app = example_app(lines)
        await app.start("127.0.0.1", 0)
        port = app.server.port
        loop = asyncio.get_running_loop()

        def get(route):
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, route), timeout=5) as answer:
                    return answer.status, answer.read().decode()
            except urllib.error.HTTPError as error:
                return error.code, error.read().decode()

        try:
            assert await loop.run_in_executor(None, get, "/bad") == (
                500, "custom route /bad failed: RuntimeError: no page")
            assert await loop.run_in_executor(None, get, "/later") == (200, json.dumps({"seq": app.device.seq}))
            async with websockets.connect("ws://127.0.0.1:%d/ws/bad" % port) as ws:
                await ws.send("x")
                with pytest.raises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
                assert ws.close_code == 1011
            assert "custom: route /bad failed: RuntimeError: no page" in lines
            assert "custom: route /ws/bad failed: ValueError: no stream" in lines
            async with websockets.connect("ws://127.0.0.1:%d/ws" % port) as ws:  # the device goes on
                assert json.loads(await asyncio.wait_for(ws.recv(), 5))["t"] == "hello"
        finally:
            await app.stop()

    asyncio.run(asyncio.wait_for(body(), 20))


def test_a_custom_py_that_raises_is_logged_and_the_device_runs_without_it(tmp_path, capsys):
    path = write(tmp_path, "custom_broken.py", (
        "from extend import sensor, command\n"
        "@command('early', args={})\n"
        "def early(device, args):\n"
        "    return None\n"
        "@sensor('soil', unit='%')\n"
        "class Soil:\n"
        "    def read(self):\n"
        "        return 1\n"
        "raise RuntimeError('oops in custom')\n"))
    lines = []
    assert extend.load(path, lines.append) is False
    assert lines == ["custom: %s failed to load, the device runs without it: RuntimeError: oops in custom" % path]
    assert "RuntimeError: oops in custom" in capsys.readouterr().err  # the traceback, for the user
    assert extend.COMMANDS == {} and extend.SENSORS == {}  # what it registered before the error is gone
    app = example_app()  # the board still names the soil sensor: it reads null, with the reason
    hello = json.loads(app.device.hello())
    assert hello["commands"] == [] and "soil" in [s["name"] for s in hello["sensors"]]
    reading = app.sample_once()
    index = [s["name"] for s in hello["sensors"]].index("soil")
    assert reading[2][index] is None
    assert reading[3][index].startswith("custom.py did not load: RuntimeError: oops")
    assert reading[2][0] is not None  # the other sensors go on
    assert command(app, {"cmd": "early"})["error"] == "unknown command: early"


def test_no_custom_py_is_fine(tmp_path):
    lines = []
    assert extend.load(str(tmp_path / "custom.py"), lines.append) is False and lines == []


@pytest.mark.parametrize("source, problem", [
    ("@sensor('bad name')\nclass S: pass\n", "sensor name 'bad name'"),
    ("@sensor('s', show='pie')\nclass S: pass\n", 'show must be "chart" or "tile"'),
    ("@command('rate')\ndef f(d, a): pass\n", "command rate: a built-in command has that name"),
    ("@command('c', args={'x': (int, 5)})\ndef f(d, a): pass\n", "give both low and high"),
    ("@command('c', args={'x': (list,)})\ndef f(d, a): pass\n", "type int, float, str or bool"),
    ("@command('c', args={'id': (int,)})\ndef f(d, a): pass\n", "other than cmd, id and token"),
    ("@command('c', args={'x': (int, 0, 9, 10)})\ndef f(d, a): pass\n", "its default must pass"),
    ("@route('/ws')\ndef f(d, r): pass\n", "other than the device's own"),
    ("@command('c')\ndef f(d, a): pass\n@command('c')\ndef g(d, a): pass\n", "registered twice"),
])
def test_registration_mistakes_say_what_is_wrong(tmp_path, source, problem):
    path = write(tmp_path, "custom_mistake.py", "from extend import sensor, command, route\n" + source)
    lines = []
    assert extend.load(path, lines.append) is False
    assert problem in lines[0], lines


def test_handler_problems_are_errors_not_crashes(tmp_path):
    path = write(tmp_path, "custom_handlers.py", (
        "from extend import command\n"
        "@command('boom')\n"
        "def boom(device, args):\n"
        "    raise ValueError('no buzzer')\n"
        "@command('odd')\n"
        "def odd(device, args):\n"
        "    return [1]\n"
        "@command('ask', args={'name': (str, 1, 8), 'loud': (bool,), 'level': (float, 0, 1, 0.5)}, readonly=True)\n"
        "def ask(device, args):\n"
        "    return {'args': args, 't': 'nope'}\n"))
    assert extend.load(path, lambda *a: None)
    app = example_app()
    assert command(app, {"cmd": "boom", "id": 1}) == {"t": "error", "id": 1, "error": "boom failed: ValueError: no buzzer"}
    assert "must return a dict or None" in command(app, {"cmd": "odd"})["error"]
    reply = command(app, {"cmd": "ask", "name": "x", "loud": True}, readonly=True)
    assert reply == {"t": "ack", "cmd": "ask", "args": {"name": "x", "loud": True, "level": 0.5}}
    assert command(app, {"cmd": "ask", "name": "", "loud": True})["error"] == "name must be 1 to 8 characters"
    assert command(app, {"cmd": "ask", "name": "x", "loud": 1})["error"] == "loud must be true or false"


def test_custom_sensor_failures_read_null_with_a_reason(tmp_path):
    path = write(tmp_path, "custom_sensors.py", (
        "from extend import sensor\n"
        "@sensor('text')\n"
        "class Text:\n"
        "    def read(self):\n"
        "        return 'wet'\n"
        "@sensor('picky')\n"
        "class Picky:\n"
        "    def __init__(self, pin):\n"
        "        raise OSError(19)\n"
        "    def read(self):\n"
        "        return 1\n"
        "@sensor('ticks', unit='n', label='Ticks', show='tile')\n"
        "def ticks():\n"
        "    return 42\n"))
    assert extend.load(path, lambda *a: None)
    board = dict(load_board("host", os.path.join(ROOT, "boards")), sensors=[
        {"type": "custom", "sensor": "text"},
        {"type": "custom", "sensor": "picky", "options": {"pin": 3}},
        {"type": "custom", "sensor": "ticks", "name": "count"},
        {"type": "custom", "sensor": "nothere"},
    ])
    check_board(board, "test")
    config = parse_config({"board": "host"}, board, "test")
    app = App(board, config, hardware(seed=1), www=WWW, log=lambda *a: None)
    hello = json.loads(app.device.hello())
    assert hello["sensors"][2] == {"name": "count", "unit": "n", "label": "Ticks", "show": "tile"}
    _, _, values, errors, _ = app.sample_once()
    assert values == [None, None, 42, None]
    assert errors[0] == "read() gave a str, not a number"
    assert errors[1] == "picky: OSError: 19"
    assert errors[2] is None
    assert errors[3] == "no custom.py sensor named nothere"


def test_a_custom_spec_needs_its_sensor_name():
    board = dict(load_board("host", os.path.join(ROOT, "boards")), sensors=[{"type": "custom"}])
    with pytest.raises(ValueError, match=r"sensors\[0\]: sensor: required for type custom"):
        check_board(board, "test")


# ------------------------------------------------------------------ the example on both runtimes


RUNTIMES = [pytest.param("cpython", id="cpython"), pytest.param("micropython", id="micropython")]


async def _use_the_example(port):
    async with websockets.connect("ws://127.0.0.1:%d/ws" % port) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        await ws.send('{"cmd":"beep","ms":300,"id":1}')
        while True:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if reply["t"] in ("ack", "error"):
                break
        sample = None
        while sample is None:
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if message["t"] == "s":
                sample = message
    return hello, reply, sample


def _simulator(name, custom):
    """tools/simulate.py with the example's board and `custom`, on CPython or
    the unix port: (process, port, the lines up to its URL)."""
    runtime = [sys.executable]
    if name == "micropython":
        mp = micropython_command()
        runtime = [mp, "-X", "heapsize=1M"]
    port = free_port()
    env = dict(os.environ, MICROPYPATH=".frozen:" + os.path.join(ROOT, "lib"))
    proc = subprocess.Popen(runtime + [os.path.join(ROOT, "tools", "simulate.py"), "--board", EXAMPLE_BOARD,
                                       "--custom", custom, "--port", str(port), "--rate", "10"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return proc, port, lines_until(proc, "open http")


def _stop(proc):
    proc.kill()
    proc.wait(5)
    proc.stdout.close()


@pytest.mark.parametrize("name", RUNTIMES)
def test_the_readme_example_runs_in_the_simulator(name):
    proc, port, lines = _simulator(name, EXAMPLE)
    try:
        assert any("custom: loaded" in line for line in lines), "".join(lines)
        hello, reply, sample = asyncio.run(_use_the_example(port))
        names = [s["name"] for s in hello["sensors"]]
        assert hello["sensors"][names.index("soil")]["label"] == "Soil moisture"
        assert hello["commands"] == ["beep"]
        assert reply == {"t": "ack", "id": 1, "cmd": "beep", "beeped": 300, "times": 1}
        assert 0 <= sample["v"][names.index("soil")] <= 100
        with urllib.request.urlopen("http://127.0.0.1:%d/soil" % port, timeout=10) as answer:
            assert json.loads(answer.read())["unit"] == "%"
    finally:
        _stop(proc)


async def _first_sample(port):
    async with websockets.connect("ws://127.0.0.1:%d/ws" % port) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if message["t"] == "s":
                return hello, message


@pytest.mark.parametrize("name", RUNTIMES)
def test_a_broken_custom_py_leaves_the_simulator_running(name, tmp_path):
    broken = write(tmp_path, "custom.py", "from extend import sensor\n\nsensor('soil')(1 / 0)\n")
    proc, port, lines = _simulator(name, broken)
    try:
        text = "".join(lines)
        assert "custom: %s failed to load, the device runs without it: ZeroDivisionError" % broken in text, text
        assert "open http" in text
        hello, sample = asyncio.run(_first_sample(port))
        names = [s["name"] for s in hello["sensors"]]
        assert hello["commands"] == [] and sample["v"][names.index("soil")] is None
        assert sample["e"][names.index("soil")].startswith("custom.py did not load: ZeroDivisionError")
        assert sample["v"][names.index("temperature")] is not None
    finally:
        _stop(proc)


def test_the_readme_shows_the_example_that_runs_here():
    """README's "Add your own sensor / output / command" block is examples/custom.py."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    section = readme.split("### Add your own sensor / output / command", 1)[1].split("\n### ", 1)[0]
    block = section.split("```py\n", 1)[1].split("```", 1)[0]
    with open(EXAMPLE, encoding="utf-8") as f:
        assert block == f.read()
    assert "--custom examples/custom.py" in section and '"type": "custom", "sensor": "soil"' in section
