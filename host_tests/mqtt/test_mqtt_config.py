"""config.json's "mqtt" block: defaults, each check naming its field, the
password never printed (firmware/mqtt_config.py through config.py)."""
import os

import pytest

import boardfile
from config import ConfigError, parse_config, redacted

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ESP32 = boardfile.load_board("esp32", os.path.join(ROOT, "boards"))


def test_only_the_host_is_needed():
    mqtt = parse_config({"mqtt": {"host": "192.168.1.20"}}, ESP32)["mqtt"]
    assert mqtt == {"host": "192.168.1.20", "port": 1883, "user": "", "password": "", "tls": False, "ca": "",
                    "prefix": "", "rate": None, "keepalive": 30, "queue": 16}


def test_tls_defaults_to_port_8883_and_a_full_block_is_kept():
    assert parse_config({"mqtt": {"host": "b.example", "tls": True}}, ESP32)["mqtt"]["port"] == 8883
    block = {"host": "b.example", "port": 1884, "user": "dev", "password": "pw", "tls": True, "ca": "ca.der",
             "prefix": "plant/floor2/kitchen", "rate": 0.5, "keepalive": 60, "queue": 32}
    assert parse_config({"mqtt": block}, ESP32)["mqtt"] == block


@pytest.mark.parametrize("block, message", [
    ("broker", "config.json: mqtt: must be an object"),
    ({}, "config.json: mqtt.host: required"),
    ({"host": ""}, "config.json: mqtt.host: required"),
    ({"host": "a b"}, "config.json: mqtt.host: required"),
    ({"host": "h", "hots": 1}, "config.json: mqtt: unknown key(s): hots"),
    ({"host": "h", "port": 0}, "config.json: mqtt.port: must be an integer from 1 to 65535"),
    ({"host": "h", "port": "1883"}, "config.json: mqtt.port:"),
    ({"host": "h", "tls": "yes"}, "config.json: mqtt.tls: must be true or false"),
    ({"host": "h", "ca": "ca.pem"}, 'config.json: mqtt.ca: needs "tls": true'),
    ({"host": "h", "tls": True, "ca": 5}, "config.json: mqtt.ca: must be a text"),
    ({"host": "h", "user": 5}, "config.json: mqtt.user: must be a text"),
    ({"host": "h", "password": "x" * 129}, "config.json: mqtt.password: must be a text of at most 128"),
    ({"host": "h", "prefix": "a/+/b"}, "config.json: mqtt.prefix: must be a topic"),
    ({"host": "h", "prefix": "a/#"}, "config.json: mqtt.prefix:"),
    ({"host": "h", "prefix": "/a"}, "config.json: mqtt.prefix:"),
    ({"host": "h", "rate": 0}, "config.json: mqtt.rate: must be a number above 0 and at most 20"),
    ({"host": "h", "rate": 50}, "config.json: mqtt.rate:"),
    ({"host": "h", "keepalive": 2}, "config.json: mqtt.keepalive: must be an integer from 5 to 600"),
    ({"host": "h", "queue": 0}, "config.json: mqtt.queue: must be an integer from 1 to 256"),
    ({"host": "h", "queue": 10000}, "config.json: mqtt.queue:"),
])
def test_each_mistake_names_its_field(block, message):
    with pytest.raises(ConfigError) as error:
        parse_config({"mqtt": block}, ESP32)
    assert str(error.value).startswith(message), str(error.value)


def test_the_password_is_never_printed():
    config = parse_config({"mqtt": {"host": "h", "user": "dev", "password": "hunter22"}, "token": "tok"}, ESP32)
    safe = redacted(config)
    assert safe["mqtt"]["password"] == "***" and safe["mqtt"]["user"] == "dev"
    assert "hunter22" not in repr(safe)
    assert config["mqtt"]["password"] == "hunter22"  # the config itself is unchanged
    assert redacted(parse_config({"mqtt": {"host": "h"}}, ESP32))["mqtt"]["password"] == ""
