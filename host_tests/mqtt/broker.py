"""A real Mosquitto on loopback for the tests: an MQTT (TCP) and a WebSocket
listener on free ports, from a config file of its own, stopped after.
Both the uplink tests (host_tests/mqtt/) and the fleet tests use it.

    broker = Mosquitto(str(tmp_path)).start()   # broker.port, broker.ws_port
    broker.stop(); broker.start()               # the same ports again: an outage
    broker.stop()

require_mosquitto() skips the test with the reason when mosquitto is not
installed, except in CI (the CI environment variable, set by .ci/run),
where a missing broker is a failure: .ci/run installs Debian's mosquitto.
"""

import getpass
import os
import shutil
import socket
import subprocess
import time

import pytest

from host_tests.processes import free_port, stop_process


def find_mosquitto():
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None


def require_mosquitto():
    """The mosquitto binary; skips (or fails, in CI) without it."""
    found = find_mosquitto()
    if found is None:
        message = "mosquitto is not installed (apt-get install mosquitto; .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message + ": in CI the broker tests must run")
        pytest.skip(message)
    return found


class Mosquitto:
    """One broker process in folder (its config and log go there)."""

    def __init__(self, folder, websockets=True, tls=None, password_file=None):
        """tls: (cafile, certfile, keyfile) adds a TLS listener on tls_port;
        password_file (mosquitto_passwd's): no anonymous clients then."""
        self.binary = require_mosquitto()
        self.folder = folder
        self.port = free_port()
        self.ws_port = free_port() if websockets else None
        self.tls = tls
        self.tls_port = free_port() if tls else None
        self.password_file = password_file
        self.log_path = os.path.join(folder, "mosquitto.log")
        self.proc = None

    def config(self):
        lines = ["listener %d 127.0.0.1" % self.port, "protocol mqtt"]
        if self.ws_port:
            lines += ["listener %d 127.0.0.1" % self.ws_port, "protocol websockets"]
        if self.tls:
            lines += ["listener %d 127.0.0.1" % self.tls_port, "protocol mqtt", "cafile " + self.tls[0],
                      "certfile " + self.tls[1], "keyfile " + self.tls[2]]
        # run as root (CI), mosquitto drops to user "mosquitto", which cannot read
        # the tests' private temporary folders: stay the user we are
        if self.password_file:
            lines += ["password_file " + self.password_file]
        lines += ["user " + getpass.getuser(), "allow_anonymous %s" % ("false" if self.password_file else "true"), "persistence false", "log_dest file " + self.log_path,
                  "log_type error", "log_type warning", "log_type notice", "log_type information"]
        return "\n".join(lines) + "\n"

    def start(self, timeout=10.0):
        conf = os.path.join(self.folder, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(self.config())
        with open(self.log_path + ".out", "ab") as out:  # what it says before its log is open
            self.proc = subprocess.Popen([self.binary, "-c", conf], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited with %s: %s" % (self.proc.returncode, self.log()))
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                if self.ws_port:
                    socket.create_connection(("127.0.0.1", self.ws_port), 0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("mosquitto did not listen within %.0f s: %s" % (timeout, self.log()))

    def stop(self):
        stop_process(self.proc)
        self.proc = None

    def log(self):
        text = ""
        for path in (self.log_path + ".out", self.log_path):
            try:
                with open(path) as f:
                    text += f.read()[-3000:]
            except OSError:
                pass
        return text
