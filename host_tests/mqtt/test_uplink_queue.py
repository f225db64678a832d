"""The uplink's device side without a broker: the bounded queue drops the
oldest and counts it, the publish rate thins the samples, commands get the
answers of on_command, a too-large one its error (firmware/uplink.py)."""
import json

from mqtt_config import parse_mqtt
from uplink import Uplink, command_token


class Clock:
    def __init__(self):
        self.ms = 0

    def __call__(self):
        return self.ms


def make(clock=None, **block):
    settings = parse_mqtt(dict({"host": "127.0.0.1"}, **block), 20, None)
    answers = []

    def on_command(payload, problem):
        answers.append((payload, problem))
        return json.dumps({"t": "error" if problem else "ack", "got": payload.decode("utf-8", "replace")})

    up = Uplink(settings, "kitchen", on_command, lambda: "{}", log=lambda *a: None, clock=clock or Clock())
    return up, answers


def queued(up):
    size = len(up._texts)
    return [up._texts[(up._head + i) % size] for i in range(up._count)]


def test_the_queue_keeps_the_newest_and_counts_the_dropped():
    up, _ = make(queue=4)
    for seq in range(10):
        up.sample('{"t":"s","seq":%d}' % seq)
    assert [json.loads(t)["seq"] for t in queued(up)] == [6, 7, 8, 9]
    assert up.dropped == 6 and up.info() == {"state": "down", "dropped": 6, "published": 0}


def test_the_publish_rate_thins_the_samples():
    clock = Clock()
    up, _ = make(clock, rate=2, queue=64)
    for seq in range(30):  # 10 a second for 3 s
        clock.ms = seq * 100
        up.sample('{"t":"s","seq":%d}' % seq)
    assert [json.loads(t)["seq"] for t in queued(up)] == [0, 5, 10, 15, 20, 25]


def test_topics_follow_the_prefix():
    up, _ = make()
    assert up.topics == (b"microws/kitchen/samples", b"microws/kitchen/reply")
    assert (up.info_topic, up.status_topic, up.cmd_topic) == (b"microws/kitchen/info", b"microws/kitchen/status",
                                                              b"microws/kitchen/cmd")
    other, _ = make(prefix="plant/floor2/k1")
    assert other.cmd_topic == b"plant/floor2/k1/cmd"


def test_commands_are_answered_on_reply_and_other_topics_ignored():
    up, answers = make()
    up._message(memoryview(b"microws/kitchen/cmd"), memoryview(b'{"cmd":"info"}'))
    up._message(memoryview(b"microws/other/cmd"), memoryview(b'{"cmd":"info"}'))
    up._message(memoryview(b"microws/kitchen/cmd"), memoryview(b'{"cmd":"rate","rate":1}'), 1)  # retained: stale
    assert answers == [(b'{"cmd":"info"}', None)]
    assert up._kinds[up._head] == 1 and json.loads(queued(up)[0])["got"] == '{"cmd":"info"}'
    up._oversize(memoryview(b"microws/kitchen/cmd"), 100000)
    payload, problem = answers[-1]
    assert payload == b"" and problem == "command too large: %d bytes (at most %d)" % (
        100000 - 2 - len(b"microws/kitchen/cmd"), 768 - 2 - len(b"microws/kitchen/cmd"))


def test_a_failing_handler_still_gets_an_answer():
    settings = parse_mqtt({"host": "h"}, 20, None)

    def broken(payload, problem):
        raise KeyError("bug")

    up = Uplink(settings, "k", broken, lambda: "{}", log=lambda *a: None)
    up._message(memoryview(b"microws/k/cmd"), memoryview(b"{}"))
    assert json.loads(queued(up)[0]) == {"t": "error", "error": "internal error: KeyError"}


def test_the_token_is_read_from_the_payload():
    assert command_token(b'{"cmd":"rate","token":"abc"}') == "abc"
    assert command_token(b'{"cmd":"rate","token":5}') is None
    assert command_token(b"[1]") is None and command_token(b"\xff") is None and command_token(b"{") is None
