"""config.json's optional "mqtt" block, checked (config.py calls this).

    "mqtt": {"host": "192.168.1.20", "port": 1883, "user": "", "password": "",
             "tls": false, "ca": "", "prefix": "microws/kitchen", "rate": 1,
             "keepalive": 30, "queue": 16}

Only host is required. port: 1883, or 8883 with tls. ca: a CA certificate
file (PEM or DER) that the broker's certificate must come from; without it
CPython checks against the system's CAs and MicroPython checks nothing
(encrypted, not authenticated). prefix: the topics'
root, default microws/<device_name>. rate: samples published per second
at most (null: every sample). queue: texts held while the broker is slow
or away (the oldest is dropped beyond). password is a secret: config's
redacted() hides it.
"""

from checks import is_bool, is_int, is_number, is_str

MQTT_DEFAULTS = {
    "host": None,
    "port": None,
    "user": "",
    "password": "",
    "tls": False,
    "ca": "",
    "prefix": "",
    "rate": None,
    "keepalive": 30,
    "queue": 16,
}
TOPIC_FORBIDDEN = "+#\0"


def parse_mqtt(data, max_rate, error):
    """The checked block (a new dict, defaults filled in), or None when
    data is None; error(field, problem) raises the config's error."""
    if data is None:
        return None
    if type(data) is not dict:
        error("mqtt", "must be an object such as {\"host\": \"192.168.1.20\"}, or null for no uplink")
    unknown = sorted(k for k in data if k not in MQTT_DEFAULTS)
    if unknown:
        error("mqtt", "unknown key(s): " + ", ".join(unknown) + " (known: " + ", ".join(sorted(MQTT_DEFAULTS)) + ")")
    mqtt = dict(MQTT_DEFAULTS)
    mqtt.update(data)
    host = mqtt["host"]
    if not is_str(host) or not 0 < len(host) <= 253 or " " in host:
        error("mqtt.host", "required: the broker's address or host name")
    if not is_bool(mqtt["tls"]):
        error("mqtt.tls", "must be true or false")
    if mqtt["port"] is None:
        mqtt["port"] = 8883 if mqtt["tls"] else 1883
    if not is_int(mqtt["port"]) or not 1 <= mqtt["port"] <= 65535:
        error("mqtt.port", "must be an integer from 1 to 65535")
    for key, longest in (("user", 64), ("password", 128), ("ca", 128)):
        if not is_str(mqtt[key]) or len(mqtt[key]) > longest:
            error("mqtt." + key, "must be a text of at most %d characters" % longest)
    if mqtt["ca"] and not mqtt["tls"]:
        error("mqtt.ca", "needs \"tls\": true")
    prefix = mqtt["prefix"]
    if not is_str(prefix) or len(prefix) > 96 or prefix.startswith("/") or prefix.endswith("/") \
            or any(c in prefix for c in TOPIC_FORBIDDEN):
        error("mqtt.prefix", "must be a topic of at most 96 characters without + or # and without a "
              "leading or trailing /, or empty for microws/<device_name>")
    rate = mqtt["rate"]
    if rate is not None and (not is_number(rate) or not 0 < rate <= max_rate):
        error("mqtt.rate", "must be a number above 0 and at most %s (samples per second), or null for every sample"
              % max_rate)
    if not is_int(mqtt["keepalive"]) or not 5 <= mqtt["keepalive"] <= 600:
        error("mqtt.keepalive", "must be an integer from 5 to 600 (seconds)")
    if not is_int(mqtt["queue"]) or not 1 <= mqtt["queue"] <= 256:
        error("mqtt.queue", "must be an integer from 1 to 256")
    return mqtt


def redacted_mqtt(mqtt):
    """A copy safe to print: the password as *** (an empty one stays empty)."""
    if not mqtt or not mqtt.get("password"):
        return mqtt
    safe = dict(mqtt)
    safe["password"] = "***"
    return safe
