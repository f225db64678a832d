"""A broker that takes the connection and then says nothing (a hung
server, a black-holed route) must not stall the device: the connect is
given up after CONNECT_TIMEOUT_S, retried with backoff, and the dashboards
see every frame meanwhile. A broker frozen mid-session (SIGSTOP) likewise."""

import json
import signal
import socket
import time

from host_tests.mqtt.helpers import Simulator, StreamCounter, Subscriber, wait_until


def info_over_ws(url):
    from websockets.sync.client import connect

    with connect(url.replace("http://", "ws://").rstrip("/") + "/ws", open_timeout=10) as ws:
        ws.send(json.dumps({"cmd": "info", "id": 1}))
        while True:
            msg = json.loads(ws.recv(10))
            if msg.get("t") == "info":
                return msg


def test_a_silent_broker_never_stalls_the_device():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes the handshakes; nobody ever answers
    port = silent.getsockname()[1]
    try:
        sim = Simulator(port, devices=1, rate=20)
        try:
            counter = StreamCounter(sim.urls[0])
            time.sleep(1)
            assert info_over_ws(sim.urls[0])["mqtt"]["state"] == "connecting"
            wait_until(lambda: "cannot connect to 127.0.0.1:%d: TimeoutError" % port in "".join(sim.lines), 15,
                       "the connect timeout")
            time.sleep(1)
            assert counter.gaps() == [] and len(counter.seqs) >= 20 * 10
            info = info_over_ws(sim.urls[0])["mqtt"]
            assert info["state"] in ("down", "connecting") and info["published"] == 0
            assert info["dropped"] > 0  # the queue is bounded: 16 kept, the older dropped and counted
            counter.close()
        finally:
            sim.stop()
    finally:
        silent.close()


def test_a_frozen_broker_never_stalls_the_device(broker):
    sub = Subscriber(broker.port)
    sim = Simulator(broker.port, devices=1, rate=20)
    try:
        counter = StreamCounter(sim.urls[0])
        wait_until(lambda: len(sub.messages("microws/sim/samples")) >= 10, 10, "samples")
        sub.close()
        broker.proc.send_signal(signal.SIGSTOP)
        try:
            time.sleep(12)
            assert counter.gaps() == [] and not counter.closed.is_set()
            assert len(counter.seqs) >= 20 * 12
        finally:
            broker.proc.send_signal(signal.SIGCONT)
        after = Subscriber(broker.port)
        try:
            wait_until(lambda: len(after.messages("microws/sim/samples")) >= 10, 30, "samples after the freeze")
        finally:
            after.close()
        assert counter.gaps() == []
        counter.close()
    finally:
        sim.stop()
