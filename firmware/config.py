"""The device configuration: config.json on the board.

    {"wifi_ssid": "home", "wifi_password": "...", "device_name": "kitchen",
     "board": "esp32", "rate": 2, "sensors": ["temperature", "humidity"],
     "ap_password": "", "port": 80, "token": "", "origins": null}

token: when set, only dashboards that present it (the page's URL ends in
?token=...) may send commands; the others are read-only. origins: a list
of allowed Origin values (e.g. ["http://192.168.1.50"]; "*" for any), or
null: a browser's Origin must then be the host it connected to.

Every field is checked against the board (rate range, sensor names) and a
mistake stops the start with one line that names the file and the field.
It holds secrets: print redacted(config), never the config itself.
"""

import json

from checks import fmt, is_int, is_name, is_number, is_str

# field: default (board and rate defaults come from the board)
DEFAULTS = {
    "wifi_ssid": "",
    "wifi_password": "",
    "device_name": "",
    "board": None,
    "rate": None,
    "sensors": None,
    "ap_password": "",
    "port": 80,
    "token": "",
    "origins": None,
    "mqtt": None,  # the uplink to a broker: firmware/mqtt_config.py
}
SECRETS = ("wifi_password", "ap_password", "token")


class ConfigError(ValueError):
    """A config file that cannot be used; the message says where and why."""


def _text(source, data, key, max_len, min_len=0):
    value = data[key]
    if not is_str(value) or not min_len <= len(value) <= max_len:
        raise ConfigError("%s: %s: must be a text of %d to %d characters" % (source, key, min_len, max_len))
    return value


def parse_config(data, board, source="config.json"):
    """The checked config (a new dict with every field, defaults filled in)
    for `board` (a checked board description); ConfigError otherwise."""
    if type(data) is not dict:
        raise ConfigError(source + ": must be a JSON object")
    unknown = sorted(k for k in data if k not in DEFAULTS)
    if unknown:
        raise ConfigError(source + ": unknown key(s): " + ", ".join(unknown)
                          + " (known: " + ", ".join(sorted(DEFAULTS)) + ")")
    config = dict(DEFAULTS)
    config.update(data)

    _text(source, config, "wifi_ssid", 32)
    _text(source, config, "wifi_password", 64)
    name = config["device_name"]
    if name != "" and not is_name(name):
        raise ConfigError(source + ": device_name: must be 1 to 32 letters, digits, '_' or '-' "
                          "(it is also the access point's and the host's name), or empty")
    if config["board"] is None:
        config["board"] = board["name"]
    elif config["board"] != board["name"]:
        raise ConfigError(source + ": board: is " + str(config["board"])
                          + " but this is board " + board["name"])

    low, high = board["min_rate"], board["max_rate"]
    if config["rate"] is None:
        config["rate"] = board["rate"]
    rate = config["rate"]
    if not is_number(rate) or not low <= rate <= high:
        raise ConfigError("%s: rate: must be a number between %s and %s" % (source, fmt(low), fmt(high)))
    config["rate"] = float(rate)

    names = config["sensors"]
    if names is not None:
        from sensor_kinds import describe

        known = [n for spec in board["sensors"] for n, _ in describe(spec)]
        if type(names) is not list or not all(is_str(n) for n in names):
            raise ConfigError(source + ": sensors: must be a list of sensor names (board " + board["name"]
                              + " has: " + ", ".join(known) + ")")
        bad = [n for n in names if n not in known]
        if bad:
            raise ConfigError(source + ": sensors: not on board " + board["name"] + ": " + ", ".join(bad)
                              + " (it has: " + ", ".join(known) + ")")
        for i in range(len(names)):
            if names[i] in names[:i]:
                raise ConfigError(source + ": sensors: " + names[i] + " is listed twice")

    ap = config["ap_password"]
    if not is_str(ap) or not (ap == "" or 8 <= len(ap) <= 63):
        raise ConfigError(source + ": ap_password: must be 8 to 63 characters (WPA2), "
                          "or empty for an open access point")

    port = config["port"]
    if not is_int(port) or not 1 <= port <= 65535:
        raise ConfigError(source + ": port: must be an integer from 1 to 65535")

    token = config["token"]
    if token is None:
        config["token"] = ""
    elif not is_str(token) or len(token) > 128 or " " in token:
        raise ConfigError(source + ": token: must be a text of at most 128 characters "
                          "without spaces, or empty")
    origins = config["origins"]
    if origins is not None and (type(origins) is not list or not all(is_str(o) and o for o in origins)):
        raise ConfigError(source + ": origins: must be a list of origins such as "
                          '"http://192.168.1.50", or null to allow any')

    def mqtt_error(field, problem):
        raise ConfigError(source + ": " + field + ": " + problem)

    if config["mqtt"] is not None:  # loaded only then: a board without the uplink keeps the heap
        from mqtt_config import parse_mqtt

        config["mqtt"] = parse_mqtt(config["mqtt"], high, mqtt_error)
    return config


def load_config(path="config.json", boards_dir="boards", board=None):
    """Read, parse and check the config file. `board`: the checked board,
    or None to load the one the file names from boards_dir."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        raise ConfigError(path + ": not found or not readable; create it with at least "
                          '{"board": "esp32"} (or your board), plus wifi_ssid and wifi_password')
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ConfigError(path + ": not valid JSON (" + str(e) + ")")
    if type(data) is not dict:
        raise ConfigError(path + ": must be a JSON object")
    if board is None:
        name = data.get("board")
        if not is_str(name) or not name:
            raise ConfigError(path + ": board: required, the name of a file in "
                              + boards_dir + "/ (e.g. esp32)")
        from boardfile import load_board

        try:
            board = load_board(name, boards_dir)
        except ValueError as e:
            raise ConfigError(path + ": board: " + str(e))
    return parse_config(data, board, path)


def redacted(config):
    """A copy that is safe to print: secrets replaced by "***" (an empty
    secret stays empty: it shows that none is set)."""
    safe = dict(config)
    for key in SECRETS:
        if safe.get(key):
            safe[key] = "***"
    if safe.get("mqtt"):
        from mqtt_config import redacted_mqtt

        safe["mqtt"] = redacted_mqtt(safe["mqtt"])
    return safe
