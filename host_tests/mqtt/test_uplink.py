"""The MQTT uplink against a real Mosquitto, with 3 simulated devices in one
process (tools/simulate.py --mqtt 127.0.0.1:PORT --devices 3):
samples, commands, the last will, a broker outage and bad input."""

import json
import time

import pytest

from host_tests.mqtt.helpers import Simulator, StreamCounter, Subscriber, wait_until

TOKEN = "s3cret"


@pytest.fixture
def subscriber(broker):
    sub = Subscriber(broker.port)
    yield sub
    sub.close()


@pytest.fixture
def devices(broker, subscriber):
    sim = Simulator(broker.port, devices=3, rate=10, token=TOKEN)
    yield sim
    sim.stop()


def seqs(subscriber, name):
    return [s["seq"] for s in subscriber.texts("microws/%s/samples" % name)]


def replies(subscriber, name):
    return subscriber.texts("microws/%s/reply" % name)


def reply_to(subscriber, name, msg_id, timeout=10):
    return wait_until(lambda: next((r for r in replies(subscriber, name) if r.get("id") == msg_id), None),
                      timeout, "the reply to command %r of %s" % (msg_id, name))


def test_every_sample_reaches_a_subscriber_in_order(devices, subscriber):
    ws = StreamCounter(devices.urls[0])
    for name in devices.names:
        wait_until(lambda: len(seqs(subscriber, name)) >= 30, 20, "30 samples of " + name)
    ws.close()
    for name in devices.names:
        got = seqs(subscriber, name)
        assert got[0] == 0, "%s: the first samples (queued before the connection was up) are missing" % name
        assert got == list(range(got[0], got[0] + len(got))), "%s: out of order or gaps: %s" % (name, got)
        status = subscriber.messages("microws/%s/status" % name)
        assert status and status[-1] == b"online"
    # the payload is the `s` text exactly as /ws carries it (same seq, same text)
    mqtt_by_seq = {json.loads(p)["seq"]: p for p in subscriber.messages("microws/sim-1/samples")}
    assert ws.seqs, "the dashboard got no sample"
    for seq in ws.seqs[:5]:
        assert seq in mqtt_by_seq
    # each device's retained info: the info answer plus sensors, controls and history
    info = json.loads(subscriber.messages("microws/sim-2/info")[-1])
    assert info["t"] == "info" and info["device"] == "sim-2" and info["rate"] == 10.0
    assert [s["name"] for s in info["sensors"]] and "controls" in info
    assert info["mqtt"]["state"] == "connected"
    assert 0 < len(info["history"]) <= 60
    seq, ms, ts, values = info["history"][-1]
    assert len(values) == len(info["sensors"])
    # the names and seeds differ: the three devices do not send the same values
    firsts = [subscriber.texts("microws/%s/samples" % n)[5]["v"] for n in devices.names]
    assert firsts[0] != firsts[1] != firsts[2]


def test_a_command_changes_the_rate_and_gets_a_reply(devices, subscriber):
    name = "sim-2"
    wait_until(lambda: len(seqs(subscriber, name)) >= 5, 20, "samples of " + name)
    # without the token the MQTT side is read-only, as /ws is
    subscriber.publish("microws/%s/cmd" % name, json.dumps({"cmd": "rate", "rate": 2, "id": "no-token"}))
    refused = reply_to(subscriber, name, "no-token")
    assert refused["t"] == "error" and "read-only" in refused["error"]
    subscriber.publish("microws/%s/cmd" % name, json.dumps({"cmd": "rate", "rate": 2, "id": 7, "token": TOKEN}))
    ack = reply_to(subscriber, name, 7)
    assert ack == {"t": "ack", "id": 7, "cmd": "rate", "rate": 2.0}
    wait_until(lambda: any(json.loads(p)["rate"] == 2.0 for p in subscriber.messages("microws/%s/info" % name)),
               10, "the retained info with the new rate")
    count = len(seqs(subscriber, name))
    time.sleep(2.0)
    samples = subscriber.texts("microws/%s/samples" % name)[count + 1:]
    steps = [b["ms"] - a["ms"] for a, b in zip(samples, samples[1:])]
    assert steps and all(450 <= step <= 550 for step in steps), steps  # 2 a second now
    # the other devices keep their rate
    other = subscriber.texts("microws/sim-1/samples")[-5:]
    assert all(80 <= b["ms"] - a["ms"] <= 120 for a, b in zip(other, other[1:]))


def test_a_killed_device_shows_offline_through_the_last_will(broker, subscriber):
    sim = Simulator(broker.port, devices=3, rate=10)
    for name in sim.names:
        wait_until(lambda: subscriber.messages("microws/%s/status" % name)[-1:] == [b"online"], 20,
                   name + " online")
    sim.kill()  # SIGKILL: no goodbye, only the will
    for name in sim.names:
        wait_until(lambda: subscriber.messages("microws/%s/status" % name)[-1:] == [b"offline"], 10,
                   name + " offline")
    late = Subscriber(broker.port, ["microws/+/status"])  # retained: a page that comes later sees it too
    try:
        wait_until(lambda: len(late.got) == 3, 5, "3 retained statuses")
        assert sorted(late.got) == [("microws/%s/status" % n, b"offline", True) for n in sim.names]
    finally:
        late.close()


def test_a_broker_outage_loses_no_dashboard_frame_and_the_uplink_comes_back(broker, devices, subscriber):
    counters = [StreamCounter(url) for url in devices.urls]
    wait_until(lambda: all(len(c.seqs) >= 5 for c in counters), 10, "dashboard samples")
    subscriber.close()
    broker.stop()
    stopped_at = time.monotonic()
    time.sleep(10)
    during = [len(c.seqs) for c in counters]
    broker.start()
    after = Subscriber(broker.port)
    try:
        for name in devices.names:  # the uplinks reconnect by themselves (backoff 1, 2, 4, 8 s)
            wait_until(lambda: after.messages("microws/%s/status" % name)[-1:] == [b"online"], 25,
                       name + " back online")
            wait_until(lambda: len(seqs(after, name)) >= 5, 10, "samples of " + name + " again")
        for counter in counters:
            assert counter.gaps() == [], "a dashboard lost frames during the outage: %s" % counter.gaps()
            assert not counter.closed.is_set()
        # the dashboards went on at 10 a second while the broker was away
        assert all(n >= 5 + 80 for n in during), during
        # the samples that the bounded queue could not hold are counted
        after.publish("microws/sim-3/cmd", json.dumps({"cmd": "info", "id": "after"}))
        info = reply_to(after, "sim-3", "after")
        assert info["mqtt"]["state"] == "connected"
        assert info["mqtt"]["dropped"] > 0
        assert time.monotonic() - stopped_at < 45
    finally:
        after.close()
        for counter in counters:
            counter.close()


def test_bad_input_on_cmd_gets_an_error_and_never_stalls_the_device(devices, subscriber):
    name = "sim-1"
    ws = StreamCounter(devices.urls[0])
    wait_until(lambda: len(ws.seqs) >= 3, 10, "dashboard samples")
    topic = "microws/%s/cmd" % name
    bad = [
        b"garbage",
        b"\xff\xfe\x00 not utf-8",
        b"[1, 2, 3]",
        json.dumps({"cmd": "launch", "id": "u"}).encode(),
        json.dumps({"cmd": "rate", "rate": "fast", "id": "r", "token": TOKEN}).encode(),
        b"x" * 100000,
        b"{" * 2000000,
    ]
    began = time.monotonic()
    for payload in bad:
        subscriber.publish(topic, payload)
    errors = wait_until(lambda: [r for r in replies(subscriber, name)] if len(replies(subscriber, name)) >= len(bad)
                        else None, 15, "an answer to each bad command")
    assert all(r["t"] == "error" for r in errors), errors
    texts = [r["error"] for r in errors]
    assert "message is not valid JSON" in texts
    assert "message is not UTF-8 text" in texts
    assert "message must be a JSON object" in texts
    assert "unknown command: launch" in texts
    assert "rate must be a number" in texts
    assert sum(t.startswith("command too large: ") for t in texts) == 2
    # a flood: the burst passes, the rest is refused (one limiter for the MQTT side)
    for i in range(40):
        subscriber.publish(topic, json.dumps({"cmd": "info", "id": "f%d" % i}))
    elapsed = time.monotonic() - began
    wait_until(lambda: len(replies(subscriber, name)) >= len(bad) + 40, 15, "an answer to each of the flood")
    flood = replies(subscriber, name)[len(bad):]
    refused = [r for r in flood if r["t"] == "error" and r["error"].startswith("too many commands")]
    assert all(r["id"].startswith("f") for r in refused)  # the bad ones were within the burst of 10
    # every message counts, bad ones too: a burst of 10, then 5 a second
    assert len(bad) + len(flood) - len(refused) <= 10 + 5 * elapsed + 1, (len(refused), elapsed)
    assert len(refused) >= 20
    # the device went on: no dashboard frame lost, samples still published, commands still answered
    time.sleep(1.5)
    before = len(seqs(subscriber, name))
    time.sleep(1.0)
    assert len(seqs(subscriber, name)) >= before + 5
    assert ws.gaps() == [] and not ws.closed.is_set()
    got = seqs(subscriber, name)
    assert got == list(range(got[0], got[0] + len(got)))
    ws.close()


def test_a_retained_command_is_not_run_at_each_connect(broker, subscriber):
    # left on the broker by someone, it would run again after every reconnect
    subscriber.client.publish("microws/sim/cmd", json.dumps({"cmd": "rate", "rate": 1, "id": "stale"}),
                              retain=True).wait_for_publish(5)
    sim = Simulator(broker.port, devices=1, rate=10)
    try:
        wait_until(lambda: len(seqs(subscriber, "sim")) >= 10, 20, "samples")
        wait_until(lambda: "a retained command on microws/sim/cmd ignored" in "".join(sim.lines), 5, "the log line")
        assert not replies(subscriber, "sim")
        samples = subscriber.texts("microws/sim/samples")[-5:]
        assert all(80 <= b["ms"] - a["ms"] <= 120 for a, b in zip(samples, samples[1:]))  # still 10 a second
        subscriber.publish("microws/sim/cmd", json.dumps({"cmd": "info", "id": "live"}))
        assert reply_to(subscriber, "sim", "live")["t"] == "info"
    finally:
        sim.stop()
