"""A real Mosquitto on loopback for the fleet tests: a TCP and a WebSocket listener on free ports.
(Stand-in until host_tests/mqtt/broker.py exists.)"""

import os
import shutil
import socket
import subprocess
import time

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    def __init__(self, folder):
        self.folder = folder
        self.port = free_port()
        self.ws_port = free_port()
        self.log_path = os.path.join(folder, "mosquitto.log")
        self.proc = None

    def start(self, timeout=10.0):
        conf = os.path.join(self.folder, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nprotocol mqtt\nlistener %d 127.0.0.1\nprotocol websockets\n"
                    "allow_anonymous true\npersistence false\nlog_dest file %s\n" % (self.port, self.ws_port, self.log_path))
        self.proc = subprocess.Popen([MOSQUITTO, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited with %s: %s" % (self.proc.returncode, self.log()))
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                socket.create_connection(("127.0.0.1", self.ws_port), 0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not listen within %.0f s: %s" % (timeout, self.log()))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.proc = None

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()[-3000:]
        except OSError:
            return ""
