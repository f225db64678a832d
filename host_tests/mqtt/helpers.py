"""What the uplink tests share: an MQTT subscriber (paho-mqtt, from PyPI),
the simulator as a process (tools/simulate.py --mqtt, CPython or the
MicroPython unix port) and a /ws client that counts samples."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from host_tests.processes import micropython_command

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIMULATE = os.path.join(ROOT, "tools", "simulate.py")


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))


class Subscriber:
    """A paho client that keeps every message it gets: (topic, payload, retain)."""

    def __init__(self, port, topics=("microws/#",)):
        self.lock = threading.Lock()
        self.got = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-%d" % id(self))
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.connect("127.0.0.1", port)
        for topic in topics:
            self.client.subscribe(topic)
        self.client.loop_start()
        assert self.subscribed.wait(5), "the broker did not confirm the subscription"

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.got.append((message.topic, bytes(message.payload), bool(message.retain)))

    def messages(self, topic):
        with self.lock:
            return [payload for t, payload, _ in self.got if t == topic]

    def texts(self, topic):
        return [json.loads(p) for p in self.messages(topic)]

    def publish(self, topic, payload):
        self.client.publish(topic, payload).wait_for_publish(5)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def free_ports(n):
    """A base port with n free ports from it."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n > 65535:
            continue
        try:
            held = []
            for port in range(base, base + n):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError("no %d consecutive free ports" % n)


class Simulator:
    """tools/simulate.py --mqtt ... --devices N in a process of its own;
    urls: each device's page, from its ready line."""

    def __init__(self, broker_port, devices=3, rate=10, token="", micropython=False, extra=()):
        self.port = free_ports(devices)
        self.devices = devices
        if micropython:
            command = [micropython_command(), "-X", "heapsize=1m", SIMULATE]
            env = dict(os.environ, MICROPYPATH=".frozen")
        else:
            command = [sys.executable, SIMULATE]
            env = None
        command += ["--port", str(self.port), "--rate", str(rate), "--mqtt", "127.0.0.1:%d" % broker_port,
                    "--devices", str(devices), "--name", "sim"] + list(extra)
        if token:
            command += ["--token", token]
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines = []
        self.urls = []
        threading.Thread(target=self._read, daemon=True).start()
        wait_until(lambda: len(self.urls) == devices or self.proc.poll() is not None, 30, "the simulator's ready lines")
        if len(self.urls) != devices:
            raise AssertionError("the simulator exited (%s):\n%s" % (self.proc.poll(), self.output()))

    @property
    def names(self):
        return ["sim"] if self.devices == 1 else ["sim-%d" % (i + 1) for i in range(self.devices)]

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            if ", open http://" in line:
                self.urls.append(line.rsplit("open ", 1)[1].strip().split("?")[0])

    def output(self):
        return "".join(self.lines[-60:])

    def kill(self):
        self.proc.kill()
        self.proc.wait(10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


class StreamCounter:
    """A /ws client in a thread: every sample's seq, in arrival order."""

    def __init__(self, url):
        self.url = url.replace("http://", "ws://").rstrip("/") + "/ws"
        self.seqs = []
        self.ws = None
        self.opened = threading.Event()
        self.closed = threading.Event()
        self.error = None
        threading.Thread(target=self._read, daemon=True).start()
        assert self.opened.wait(10), "no /ws connection: %s" % self.error

    def _read(self):
        from websockets.sync.client import connect

        try:
            with connect(self.url, open_timeout=10) as ws:
                self.ws = ws
                self.opened.set()
                for message in ws:
                    msg = json.loads(message)
                    if msg.get("t") == "s":
                        self.seqs.append(msg["seq"])
        except Exception as error:  # noqa: BLE001 (the test looks at closed and error)
            self.error = error
        self.closed.set()

    def gaps(self):
        seqs = list(self.seqs)
        return [(a, b) for a, b in zip(seqs, seqs[1:]) if b != a + 1]

    def close(self):
        if self.ws is not None:
            self.ws.close()
