"""config.json: defaults, every check with the field named, secrets hidden."""
import json
import os

import pytest

import boardfile
from config import ConfigError, load_config, parse_config, redacted

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOARDS_DIR = os.path.join(ROOT, "boards")
ESP32 = boardfile.load_board("esp32", BOARDS_DIR)


def test_config_minimal_gets_defaults():
    config = parse_config({"board": "esp32"}, ESP32)
    assert config == {
        "wifi_ssid": "", "wifi_password": "", "device_name": "", "board": "esp32",
        "rate": 2.0, "sensors": None, "ap_password": "", "port": 80, "token": "",
        "origins": None, "mqtt": None,
    }


def test_config_full_is_kept():
    data = {"wifi_ssid": "home", "wifi_password": "hunter22", "device_name": "kitchen-1", "board": "esp32",
            "rate": 5, "sensors": ["humidity", "temperature"], "ap_password": "12345678", "port": 8080,
            "token": "s3cret", "origins": ["http://192.168.1.5"]}
    config = parse_config(data, ESP32)
    assert config == dict(data, rate=5.0, mqtt=None)
    assert type(config["rate"]) is float


def test_config_board_defaults_to_the_given_board():
    assert parse_config({}, ESP32)["board"] == "esp32"


def test_config_does_not_change_its_input():
    data = {"rate": 3}
    parse_config(data, ESP32)
    assert data == {"rate": 3}


@pytest.mark.parametrize("data, message", [
    ({"rate": 0.05}, "config.json: rate: must be a number between 0.1 and 20"),
    ({"rate": 21}, "config.json: rate: must be a number between 0.1 and 20"),
    ({"rate": "2"}, "config.json: rate: must be a number between 0.1 and 20"),
    ({"rate": True}, "config.json: rate: must be a number between 0.1 and 20"),
    ({"wifi_ssid": 5}, "config.json: wifi_ssid: must be a text of 0 to 32 characters"),
    ({"wifi_ssid": "x" * 33}, "config.json: wifi_ssid: must be a text"),
    ({"wifi_password": None}, "config.json: wifi_password: must be a text"),
    ({"device_name": "my device"}, "config.json: device_name: must be 1 to 32 letters"),
    ({"device_name": "x" * 33}, "config.json: device_name:"),
    ({"board": "picow"}, "config.json: board: is picow but this is board esp32"),
    ({"sensors": "temperature"}, "config.json: sensors: must be a list of sensor names"),
    ({"sensors": ["temperature", 3]}, "config.json: sensors: must be a list"),
    ({"sensors": ["temperature", "co2"]},
     "config.json: sensors: not on board esp32: co2 (it has: temperature,"),
    ({"sensors": ["light", "light"]}, "config.json: sensors: light is listed twice"),
    ({"ap_password": "short"}, "config.json: ap_password: must be 8 to 63 characters (WPA2), or empty"),
    ({"ap_password": "x" * 64}, "config.json: ap_password:"),
    ({"ap_password": 12345678}, "config.json: ap_password:"),
    ({"port": 0}, "config.json: port: must be an integer from 1 to 65535"),
    ({"port": 65536}, "config.json: port:"),
    ({"port": "80"}, "config.json: port:"),
    ({"port": 80.0}, "config.json: port:"),
    ({"token": 5}, "config.json: token: must be a text"),
    ({"token": "a b"}, "config.json: token:"),
])
def test_config_error_names_the_field(data, message):
    with pytest.raises(ConfigError) as e:
        parse_config(data, ESP32)
    assert message in str(e.value)


def test_config_unknown_keys_are_named():
    with pytest.raises(ConfigError) as e:
        parse_config({"wifi_sid": "home", "rat": 2}, ESP32)
    assert "config.json: unknown key(s): rat, wifi_sid" in str(e.value)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_config_not_an_object():
    with pytest.raises(ConfigError, match="config.json: must be a JSON object"):
        parse_config([1], ESP32)


def test_config_empty_values_mean_unset():
    config = parse_config({"ap_password": "", "token": None, "sensors": []}, ESP32)
    assert config["ap_password"] == "" and config["token"] == "" and config["sensors"] == []


def test_config_rate_limits_come_from_the_board():
    esp8266 = boardfile.load_board("esp8266", BOARDS_DIR)
    with pytest.raises(ConfigError, match="between 0.1 and 10"):
        parse_config({"rate": 15}, esp8266)
    assert parse_config({"rate": 15}, ESP32)["rate"] == 15.0


def test_config_error_uses_given_source_name():
    with pytest.raises(ConfigError, match="^/flash/config.json: port:"):
        parse_config({"port": -1}, ESP32, "/flash/config.json")


# ---------------------------------------------------------------- load_config

def write(tmp_path, data):
    path = tmp_path / "config.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


def test_load_config_reads_file_and_its_board(tmp_path):
    path = write(tmp_path, {"board": "picow", "wifi_ssid": "home", "wifi_password": "pw"})
    config = load_config(path, BOARDS_DIR)
    assert config["board"] == "picow" and config["wifi_ssid"] == "home" and config["rate"] == 2.0


def test_load_config_with_a_board_given(tmp_path):
    path = write(tmp_path, {"rate": 4})
    assert load_config(path, board=ESP32)["rate"] == 4.0


def test_load_config_missing_file_is_a_clear_error(tmp_path):
    path = str(tmp_path / "config.json")
    with pytest.raises(ConfigError) as e:
        load_config(path, BOARDS_DIR)
    assert str(e.value).startswith(path + ": not found")
    assert '"board"' in str(e.value)


def test_load_config_invalid_json(tmp_path):
    path = write(tmp_path, '{"board": "esp32",,}')
    with pytest.raises(ConfigError, match="config.json: not valid JSON"):
        load_config(path, BOARDS_DIR)


def test_load_config_not_an_object(tmp_path):
    path = write(tmp_path, "[]")
    with pytest.raises(ConfigError, match="config.json: must be a JSON object"):
        load_config(path, BOARDS_DIR)


def test_load_config_without_board(tmp_path):
    path = write(tmp_path, {"wifi_ssid": "home"})
    with pytest.raises(ConfigError, match="config.json: board: required"):
        load_config(path, BOARDS_DIR)


def test_load_config_unknown_board(tmp_path):
    path = write(tmp_path, {"board": "arduino"})
    with pytest.raises(ConfigError) as e:
        load_config(path, BOARDS_DIR)
    assert "config.json: board: " in str(e.value) and "arduino.json: no such board file" in str(e.value)
    assert "esp32" in str(e.value)


def test_load_config_error_never_shows_the_password(tmp_path):
    path = write(tmp_path, {"board": "esp32", "wifi_password": "hunter22", "ap_password": "short"})
    with pytest.raises(ConfigError) as e:
        load_config(path, BOARDS_DIR)
    assert "hunter22" not in str(e.value) and "short" not in str(e.value)


# ------------------------------------------------------------------- redacted

def test_redacted_hides_every_secret():
    config = parse_config({"wifi_ssid": "home", "wifi_password": "hunter22", "ap_password": "abcdefgh",
                           "token": "Zq9-token-x"}, ESP32)
    safe = redacted(config)
    assert safe["wifi_password"] == safe["ap_password"] == safe["token"] == "***"
    assert safe["wifi_ssid"] == "home"
    for secret in ("hunter22", "abcdefgh", "Zq9-token-x"):
        assert secret not in repr(safe)


def test_redacted_leaves_the_config_alone():
    config = parse_config({"wifi_password": "hunter22"}, ESP32)
    redacted(config)
    assert config["wifi_password"] == "hunter22"


def test_redacted_shows_unset_secrets_as_empty():
    safe = redacted(parse_config({}, ESP32))
    assert safe["wifi_password"] == "" and safe["ap_password"] == "" and safe["token"] == ""


def test_config_origins_must_be_a_list_of_texts():
    assert parse_config({"origins": ["http://10.0.0.5"]}, ESP32)["origins"] == ["http://10.0.0.5"]
    for bad in ("http://10.0.0.5", [""], [5]):
        with pytest.raises(ConfigError, match="origins"):
            parse_config({"origins": bad}, ESP32)
