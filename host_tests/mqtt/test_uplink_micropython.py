"""The same uplink under real MicroPython (the unix port, 1 MB heap), as a
board runs it: micropython tools/simulate.py --mqtt 127.0.0.1:PORT --devices 2."""

import json

from host_tests.mqtt.helpers import Simulator, StreamCounter, Subscriber, wait_until


def test_the_uplink_runs_under_micropython(broker):
    sub = Subscriber(broker.port)
    sim = Simulator(broker.port, devices=2, rate=10, token="tok", micropython=True)
    try:
        ws = StreamCounter(sim.urls[1])
        for name in sim.names:
            wait_until(lambda: len(sub.messages("microws/%s/samples" % name)) >= 20, 30, "samples of " + name)
            got = [s["seq"] for s in sub.texts("microws/%s/samples" % name)]
            assert got[0] == 0 and got == list(range(len(got))), got
            assert sub.messages("microws/%s/status" % name)[-1] == b"online"
        info = json.loads(sub.messages("microws/sim-1/info")[-1])
        assert info["device"] == "sim-1" and info["mem_free"] > 0 and info["history"]
        sub.publish("microws/sim-2/cmd", json.dumps({"cmd": "rate", "rate": 4, "id": 3, "token": "tok"}))
        sub.publish("microws/sim-2/cmd", b"x" * 50000)
        replies = wait_until(lambda: sub.texts("microws/sim-2/reply") if len(sub.messages("microws/sim-2/reply")) >= 2
                             else None, 10, "two replies")
        assert replies[0] == {"t": "ack", "id": 3, "cmd": "rate", "rate": 4.0}
        assert replies[1]["t"] == "error" and replies[1]["error"].startswith("command too large")
        wait_until(lambda: len(ws.seqs) >= 10, 10, "dashboard samples")
        assert ws.gaps() == []
        ws.close()
        sim.kill()
        for name in sim.names:
            wait_until(lambda: sub.messages("microws/%s/status" % name)[-1:] == [b"offline"], 10, name + " offline")
    finally:
        sim.stop()
        sub.close()
