"""The uplink's device side without a broker: the bounded queue drops the
oldest and counts it, the publish rate thins the samples, commands get the
answers of on_command, a too-large one its error, and no answer is lost to
a flood (firmware/uplink.py)."""
import asyncio
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
    ring = up.samples
    return [ring._texts[(ring._head + i) % len(ring._texts)] for i in range(ring.count)]


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
    assert not queued(up) and json.loads(up.replies.first())["got"] == '{"cmd":"info"}'
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
    assert json.loads(up.replies.first()) == {"t": "error", "error": "internal error: KeyError"}


def test_the_token_is_read_from_the_payload():
    assert command_token(b'{"cmd":"rate","token":"abc"}') == "abc"
    assert command_token(b'{"cmd":"rate","token":5}') is None
    assert command_token(b"[1]") is None and command_token(b"\xff") is None and command_token(b"{") is None


class SendingWriter:
    """The socket side of a connection that takes everything at once."""

    def __init__(self):
        self.sent = bytearray()
        self.transport = self

    def write(self, data):
        self.sent += data

    async def drain(self):
        await asyncio.sleep(0)

    def get_write_buffer_size(self):
        return 0


def publish_packet(topic, payload):
    body = bytes([len(topic) >> 8, len(topic) & 0xFF]) + topic + payload
    assert len(body) < 128
    return bytes([0x30, len(body)]) + body


def packets(data):
    """(kind, topic, payload) of each packet written: topic and payload for a PUBLISH only."""
    at, found = 0, []
    while at < len(data):
        kind, n, shift = data[at] & 0xF0, 0, 0
        at += 1
        while True:  # the remaining length, 7 bits a byte
            n |= (data[at] & 0x7F) << shift
            shift += 7
            at += 1
            if not data[at - 1] & 0x80:
                break
        body = data[at:at + n]
        at += n
        if kind == 0x30:
            end = 2 + (body[0] << 8 | body[1])
            found.append((kind, body[2:end], body[end:]))
        else:
            found.append((kind, None, None))
    return found


def test_a_flood_of_commands_read_at_once_loses_no_answer():
    # 30 commands in one TCP read: more than the replies held. The reader
    # waits for the writer instead of dropping answers.
    async def scenario():
        up, answers = make()
        reader = asyncio.StreamReader()
        commands = b"".join(publish_packet(b"microws/kitchen/cmd", b'{"cmd":"info","id":%d}' % i)
                            for i in range(30))
        reader.feed_data(commands + b"\x90\x03\x00\x01\x00")  # and the SUBACK
        reader.feed_eof()
        writer = SendingWriter()
        up.client._stream = (reader, writer)
        up.sample('{"t":"s","seq":1}')
        tasks = [asyncio.create_task(up._writer()), asyncio.create_task(up._reader())]
        for _ in range(200):
            await asyncio.sleep(0)
            if up._failure is not None and not up.replies.count:
                break
        for task in tasks:
            task.cancel()
        return up, answers, bytes(writer.sent)

    up, answers, sent = asyncio.run(scenario())
    assert len(answers) == 30
    assert up._failure == "MQTTError: broker closed the connection"  # all read, to the end
    published = [(topic, payload) for kind, topic, payload in packets(sent) if kind == 0x30]
    answered = [json.loads(json.loads(payload)["got"])["id"] for topic, payload in published
                if topic == b"microws/kitchen/reply"]
    assert answered == list(range(30))  # each, in order
    assert [topic for topic, _ in published].count(b"microws/kitchen/samples") == 1
    assert up.dropped == 0 and up.published == 31
