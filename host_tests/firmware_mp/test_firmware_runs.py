"""The firmware's own modules, run the same way under CPython (pytest) and
under real MicroPython (test_micropython.py): what a board executes at
start-up and on every sample must not rely on anything only CPython has.
Plain asserts only: this file runs without pytest on MicroPython.
"""

import json
import struct
import sys

ROOT = __file__.rsplit("/", 3)[0] if __file__.count("/") >= 3 else "."
BOARDS = ROOT + "/boards"
for _path in (ROOT + "/lib", ROOT + "/firmware"):
    if _path not in sys.path:
        sys.path.append(_path)

from access import CommandLimiter
from token_guard import token_matches  # noqa: E402
from boardfile import board_names, load_board, memory_budget  # noqa: E402
from config import ConfigError, parse_config, redacted  # noqa: E402
from device import Device, sample_binary, sample_text  # noqa: E402
from output_kinds import build_outputs  # noqa: E402
from sensor_kinds import build_sensors  # noqa: E402


class Clock:
    def __init__(self):
        self.now = 1000

    def __call__(self):
        return self.now


def host_device(clock, **config):
    board = load_board("host", BOARDS)
    config["board"] = "host"
    checked = parse_config(config, board, "test")
    hw = {"seed": 5, "clock": clock, "gc": None}
    return Device(board, checked, build_sensors(board, checked, hw), build_outputs(board, {}), clock,
                  mem=lambda: (1000, 2000))


def test_every_board_file_loads_and_fits_its_heap_or_says_it_does_not():
    names = board_names(BOARDS)
    for name in ("esp32", "esp8266", "picow", "host"):
        assert name in names
    for name in names:
        board = load_board(name, BOARDS)
        if board["measured"].get("fits", True):
            assert memory_budget(board) < board["heap_bytes"], name
        else:  # measured too big (tools/measure_boards.py): the file must not claim otherwise
            assert memory_budget(board) >= board["heap_bytes"] * board["measured"]["heap_share"], name
            assert board["max_clients"] == 1 and board["deploy"] == "frozen", name


def test_config_errors_name_the_field_and_secrets_stay_hidden():
    board = load_board("esp32", BOARDS)
    try:
        parse_config({"board": "esp32", "rate": 99}, board)
        raise AssertionError("rate 99 accepted")
    except ConfigError as error:
        assert "rate" in str(error)
    config = parse_config({"board": "esp32", "wifi_password": "hunter22", "token": "abc"}, board)
    shown = str(redacted(config))
    assert "hunter22" not in shown and "abc" not in shown


def test_samples_as_text_and_binary_carry_the_same_reading():
    clock = Clock()
    device = host_device(clock)
    reading = device.read()
    seq, ms, values, errors, ts = reading  # errors: None while every sensor reads; ts: no clock yet
    assert errors is None and ts is None
    assert seq == 0 and ms == 1000 and len(values) == 6
    message = json.loads(sample_text(reading))
    assert message["t"] == "s" and message["seq"] == 0 and message["v"] == values
    assert " " not in sample_text(reading)
    data = sample_binary(reading)
    assert len(data) == 12 + 4 * len(values)
    magic, version, count, bseq, bms = struct.unpack("<BBHII", bytes(data[:12]))
    assert (magic, version, count, bseq, bms) == (0x53, 1, 6, 0, 1000)
    first = struct.unpack("<f", bytes(data[12:16]))[0]
    assert abs(first - values[0]) < 0.01
    clock.now += 500
    assert json.loads(device.sample())["seq"] == 1


def test_commands_answer_and_never_raise():
    device = host_device(Clock())
    reply, change = device.handle_command('{"cmd":"rate","rate":5,"id":1}')
    assert json.loads(reply) == {"t": "ack", "id": 1, "cmd": "rate", "rate": 5.0}
    assert json.loads(change) == {"t": "state", "rate": 5.0, "outputs": {"led": False, "relay": False, "fan": 0},
                                  "clock": False}
    for junk in ("", "{", "[]", '{"cmd":1}', '{"cmd":"rate","rate":"fast"}', '{"cmd":"nope"}', b"\xff"):
        reply, change = device.handle_command(junk)
        assert json.loads(reply)["t"] == "error" and change is None
    reply, _ = device.handle_command('{"cmd":"led","on":true}', readonly=True)
    assert "read-only" in json.loads(reply)["error"]
    info = json.loads(device.handle_command('{"cmd":"info"}', clients=2)[0])
    assert info["clients"] == 2 and info["mem_free"] == 1000


def test_token_and_rate_limit():
    assert token_matches("s3cret", "s3cret") and not token_matches("s3cre", "s3cret")
    clock = Clock()
    limiter = CommandLimiter(clock, per_second=5, burst=2)
    assert limiter.allow() and limiter.allow() and not limiter.allow()
    clock.now += 200
    assert limiter.allow()


def test_the_app_builds_its_server_and_routes():
    from app import BINARY_PATH, TEXT_PATH, App

    board = load_board("host", BOARDS)
    config = parse_config({"board": "host", "rate": 4}, board)
    app = App(board, config, {"seed": 1, "clock": Clock(), "gc": None}, www=ROOT + "/firmware/www",
              log=lambda *a: None)
    assert app.server.max_clients == board["max_clients"]
    assert len(app.server.group(TEXT_PATH)) == 0 and len(app.server.group(BINARY_PATH)) == 0
    reading = app.sample_once()  # nobody listens: read all the same, for the history
    assert reading[0] == 0 and app.device.seq == 1 and app.device.history.size == 1


def test_the_history_ring_wraps_in_order_and_a_sample_allocates_nothing():
    from history import History, HistorySender

    ring = History(8, 3)
    values = [21.5, None, 7]
    try:
        import micropython

        lock, unlock = micropython.heap_lock, micropython.heap_unlock
    except (ImportError, AttributeError):  # CPython: the same pushes, without the lock
        lock = unlock = lambda: None
    lock()
    try:
        for seq in range(20):
            ring.push(seq, 1000 + seq, values)
    finally:
        unlock()
    assert ring.size == 8 and ring.oldest_seq() == 12 and ring.newest_seq == 19
    rows = []
    for chunk in HistorySender(ring, [1, None, None]).chunks(lambda ms: 1764590000000 + ms):
        message = json.loads(chunk if isinstance(chunk, str) else bytes(chunk).decode())
        rows += message["rows"]
    assert message == {"t": "h", "rows": [], "done": True}
    assert [r[0] for r in rows] == list(range(12, 20))
    assert rows[0] == [12, 1012, 1764590001012, [21.5, None, 7]]


def test_time_command_and_ts_under_every_runtime():
    clock = Clock()
    device = host_device(clock)
    reply, change = device.handle_command('{"cmd":"time","ms":1764590000000,"id":4}')
    assert json.loads(reply) == {"t": "ack", "id": 4, "cmd": "time", "clock": "dashboard"}
    assert json.loads(change)["clock"] is True
    clock.now += 250
    assert json.loads(sample_text(device.read()))["ts"] == 1764590000250
    reply, _ = device.handle_command('{"cmd":"fan","value":101}')
    assert "from 0 to 100" in json.loads(reply)["error"]
