"""Board files: each loads, is checked field by field, and fits its heap."""
import copy
import json
import os

import pytest

import boardfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOARDS_DIR = os.path.join(ROOT, "boards")
BOARD_NAMES = sorted(f[:-5] for f in os.listdir(BOARDS_DIR) if f.endswith(".json"))


def test_board_files_exist_for_every_supported_board():
    assert set(BOARD_NAMES) >= {"esp32", "esp8266", "picow", "host"}


@pytest.mark.parametrize("name", BOARD_NAMES)
def test_board_file_loads(name):
    board = boardfile.load_board(name, BOARDS_DIR)
    assert board["name"] == name


def _fits_mark(name):
    """A board whose measurement says it does not fit its heap (measured.fits false,
    written by tools/measure_boards.py) is an expected failure, strict: once a
    new measurement fits, the test passes and says to drop the mark."""
    with open(os.path.join(BOARDS_DIR, name + ".json"), encoding="utf-8") as f:
        measured = json.load(f).get("measured") or {}
    if measured.get("fits") is False:
        return pytest.param(name, marks=pytest.mark.xfail(
            strict=True, reason="measured: %s does not fit its heap even frozen (boards/%s.json)" % (name, name)))
    return name


@pytest.mark.parametrize("name", [_fits_mark(n) for n in BOARD_NAMES])
def test_board_memory_budget_fits_three_quarters_of_heap(name):
    board = boardfile.load_board(name, BOARDS_DIR)
    budget = boardfile.memory_budget(board)
    assert budget <= 0.75 * board["heap_bytes"], (name, budget, board["heap_bytes"])


@pytest.mark.parametrize("name", BOARD_NAMES)
def test_board_limits_come_from_its_measurement(name):
    board = boardfile.load_board(name, BOARDS_DIR)
    measured = board["measured"]
    assert measured["tool"] == "tools/measure_boards.py"
    assert measured["heap_share"] == 0.75
    fit = (int(0.75 * board["heap_bytes"]) - measured["app_bytes"]) // measured["per_connection_bytes"]
    assert measured["clients_that_fit"] == max(0, fit)
    assert measured["fits"] == (fit >= 1)
    assert board["max_clients"] == max(1, min(fit, board.get("client_cap", 64)))
    if board["deploy"] == "mpy":  # the precompiled files fit: the app is the one measured with them
        assert measured["app_bytes"] == measured["mpy_app_bytes"]
    else:  # they do not: frozen, and the app is estimated without the code
        assert board["deploy"] == "frozen"
        assert measured["mpy_app_bytes"] > 0.75 * board["heap_bytes"] - measured["per_connection_bytes"]
        assert measured["app_bytes"] == measured["mpy_app_bytes"] - measured["code_bytes"]
    factor = 1.0 if board["mpy_arch"] is None else 1.4
    unix = measured["unix64"]
    assert measured["factor_64_to_32"] == factor
    ring = measured["history_bytes"]  # 4-byte array items on every port: not converted
    assert measured["history"] == board.get("history", 0)
    assert ring >= 8 * measured["history"]  # at least its ms and one value per sample
    assert measured["mpy_app_bytes"] == round((unix["app_bytes"] - ring) / factor) + ring
    assert measured["per_connection_bytes"] == round((unix["slot_bytes"] + unix["connection_bytes"]) / factor)
    # the code in a ROMFS image, imported in place, leaves more heap than the same .mpy files
    assert measured["romfs_app_bytes"] == round((unix["romfs_app_bytes"] - ring) / factor) + ring
    assert ring < measured["romfs_app_bytes"] < measured["mpy_app_bytes"]
    fit = (int(0.75 * board["heap_bytes"]) - measured["romfs_app_bytes"]) // measured["per_connection_bytes"]
    assert measured["romfs_clients_that_fit"] == max(0, fit)


def test_board_archs_match_their_chips():
    archs = {n: boardfile.load_board(n, BOARDS_DIR)["mpy_arch"] for n in ("esp32", "esp8266", "picow", "host")}
    assert archs == {"esp32": "xtensawin", "esp8266": "xtensa", "picow": "armv6m", "host": None}


def test_board_leds_match_the_hardware():
    led = {n: boardfile.load_board(n, BOARDS_DIR)["led"] for n in ("esp32", "esp8266", "picow")}
    assert led["esp8266"] == {"pin": 2, "active_low": True}
    assert led["picow"]["pin"] == "LED"


def test_host_board_simulates_the_weather_and_reports_heap_and_uptime():
    from sensor_kinds import describe

    board = boardfile.load_board("host", BOARDS_DIR)
    names = [n for spec in board["sensors"] for n, _ in describe(spec)]
    assert names == ["temperature", "humidity", "pressure", "light", "free_heap", "uptime"]


def test_memory_budget_counts_each_connection():
    board = boardfile.load_board("esp32", BOARDS_DIR)
    more = dict(board, max_clients=board["max_clients"] + 1)
    per_connection = board["measured"]["per_connection_bytes"]
    assert per_connection > board["max_message_size"]  # at least its receive buffer
    assert boardfile.memory_budget(more) - boardfile.memory_budget(board) == per_connection


def test_memory_budget_is_the_measured_app_and_connections():
    board = {"name": "x", "max_clients": 3, "measured": {"app_bytes": 40000, "per_connection_bytes": 5000}}
    assert boardfile.memory_budget(board) == 40000 + 3 * 5000


def test_memory_budget_needs_a_measurement():
    with pytest.raises(ValueError, match="board x: no measured block; run python3 tools/measure_boards.py"):
        boardfile.memory_budget({"name": "x", "max_clients": 1, "max_message_size": 1024, "queue_size": 1})


# ------------------------------------------------------------------ errors

def good():
    return copy.deepcopy(boardfile.load_board("esp32", BOARDS_DIR))


def write_board(tmp_path, name, data):
    path = tmp_path / (name + ".json")
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return str(tmp_path)


def test_load_board_missing_file_lists_known_boards(tmp_path):
    write_board(tmp_path, "esp32", good())
    with pytest.raises(ValueError) as e:
        boardfile.load_board("esp33", str(tmp_path))
    assert "esp33.json: no such board file" in str(e.value)
    assert "esp32" in str(e.value)


def test_load_board_rejects_path_in_name(tmp_path):
    with pytest.raises(ValueError, match="board name"):
        boardfile.load_board("../config", str(tmp_path))


def test_load_board_invalid_json_names_file(tmp_path):
    d = write_board(tmp_path, "esp32", "{not json")
    with pytest.raises(ValueError, match=r"esp32\.json: not valid JSON"):
        boardfile.load_board("esp32", d)


def test_load_board_name_must_match_file(tmp_path):
    d = write_board(tmp_path, "other", good())
    with pytest.raises(ValueError, match=r"other\.json: name: must be the file's name"):
        boardfile.load_board("other", d)


@pytest.mark.parametrize("field, value, message", [
    ("max_clients", 0, "max_clients: must be an integer from 1 to 64"),
    ("max_clients", True, "max_clients: must be an integer"),
    ("max_clients", 2.0, "max_clients: must be an integer"),
    ("heap_bytes", "lots", "heap_bytes: must be an integer"),
    ("max_message_size", 100, "max_message_size: must be an integer from 125"),
    ("queue_size", 0, "queue_size: must be an integer from 1"),
    ("mpy_arch", "z80", "mpy_arch: must be one of"),
    ("description", 5, "description: must be a text"),
    ("rate", 50, "rate: must be between min_rate (0.1) and max_rate (20)"),
    ("min_rate", 0, "min_rate: must be a number > 0"),
    ("max_rate", "fast", "max_rate: must be a number > 0"),
    ("led", {"pin": 2, "active_low": "yes"}, "led.active_low: must be true or false"),
    ("led", {"active_low": True}, "led.pin: required"),
    ("led", {"pin": -1}, "led.pin: must be a GPIO number"),
    ("led", {"pin": 2, "colour": "red"}, "led.colour: unknown"),
    ("i2c", {"sda": 21}, "i2c.scl: required"),
    ("i2c", {"sda": 21, "scl": 22, "freq": "fast"}, "i2c.freq: must be an integer"),
    ("sensors", {}, "sensors: must be a list"),
    ("client_cap", 0, "client_cap: must be an integer from 1 to 64"),
    ("deploy", "sdcard", "deploy: must be one of mpy, frozen"),
    ("measured", [], "measured: must be an object"),
    ("measured", {"app_bytes": 1}, "measured.per_connection_bytes: must be an integer >= 0"),
])
def test_check_board_names_file_and_field(field, value, message):
    board = good()
    board[field] = value
    with pytest.raises(ValueError) as e:
        boardfile.check_board(board, "boards/esp32.json")
    assert str(e.value).startswith("boards/esp32.json: ")
    assert message in str(e.value)


def test_check_board_missing_field():
    board = good()
    del board["queue_size"]
    with pytest.raises(ValueError, match="queue_size: required"):
        boardfile.check_board(board, "b.json")


def test_check_board_unknown_field():
    board = good()
    board["max_client"] = 3
    with pytest.raises(ValueError, match="max_client: unknown field"):
        boardfile.check_board(board, "b.json")


def test_check_board_not_an_object():
    with pytest.raises(ValueError, match="b.json: must be a JSON object"):
        boardfile.check_board([], "b.json")


@pytest.mark.parametrize("spec, message", [
    ({"type": "thermocouple"}, "sensors[0]: type: must be one of"),
    ({"type": "adc", "pin": 34}, "sensors[0]: name: required for type adc"),
    ({"type": "adc", "name": "x"}, "sensors[0]: pin or channel: give exactly one"),
    ({"type": "adc", "name": "x", "pin": 34, "channel": 0}, "pin or channel: give exactly one"),
    ({"type": "adc", "name": "x", "pin": 34, "scale": "big"}, "scale: must be a number"),
    ({"type": "adc", "name": "bad name", "pin": 34}, "name: must be a name"),
    ({"type": "dht22"}, "pin: required for type dht22"),
    ({"type": "dht22", "pin": 4, "names": ["t"]}, "names: must be a list of 2 names"),
    ({"type": "bme280", "address": 300}, "address: must be a 7-bit I2C address"),
    ({"type": "uptime", "unit": "h"}, "unit: unknown for type uptime"),
    ({"type": "simulated", "name": "t", "period_s": 0}, "period_s: must be a number > 0"),
    ({"type": "simulated", "name": "t", "min": 5, "max": 1}, "min: must be below max"),
    ({"type": "digital", "name": "b", "pin": 0, "pull": "sideways"}, "pull: must be"),
    ("adc", "sensors[0]: must be an object"),
])
def test_check_board_names_bad_sensor_spec(spec, message):
    board = good()
    board["sensors"] = [spec]
    with pytest.raises(ValueError) as e:
        boardfile.check_board(board, "b.json")
    assert message in str(e.value)


def test_check_board_rejects_duplicate_sensor_names():
    board = good()
    board["sensors"] = [{"type": "bme280"}, {"type": "dht22", "pin": 4}]
    with pytest.raises(ValueError, match=r"sensors\[1\]: sensor name temperature is used twice"):
        boardfile.check_board(board, "b.json")


def test_check_board_accepts_renamed_duplicate_sensors():
    board = good()
    board["sensors"] = [{"type": "bme280"}, {"type": "dht22", "pin": 4, "names": ["t_out", "h_out"]}]
    boardfile.check_board(board, "b.json")


def test_check_board_bme280_needs_i2c():
    board = good()
    board["i2c"] = None
    with pytest.raises(ValueError, match="bme280 needs the board's i2c pins"):
        boardfile.check_board(board, "b.json")


def test_board_names_lists_json_files(tmp_path):
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("")
    assert boardfile.board_names(str(tmp_path)) == ["a"]
    assert boardfile.board_names(str(tmp_path / "missing")) == []
