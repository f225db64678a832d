"""What the dashboard's browser tests share: Chromium (or a skip that says how to get it),
the simulator as a child process, and a Playwright page with waits that report what they saw.

Needs Debian's Chromium and the Python playwright package (never `playwright install`):

    apt-get install -y chromium
    python3 -m pip install playwright

Without them the modules that import this are skipped, with a warning. MICROWS_CHROMIUM
names another Chromium binary; MICROWS_SIMULATOR=path replaces tools/simulate.py.
"""

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings

import pytest

from host_tests.processes import free_port, stop_process

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INSTALL = "apt-get install -y chromium && python3 -m pip install playwright  (do not run `playwright install`)"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-proxy-server",
]


def _find_chromium():
    for candidate in (os.environ.get("MICROWS_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


CHROMIUM = _find_chromium()
_missing = []
if importlib.util.find_spec("playwright") is None:
    _missing.append("the Python package playwright")
if CHROMIUM is None:
    _missing.append("Chromium (/usr/bin/chromium)")
if _missing:
    _reason = "dashboard browser tests SKIPPED: %s not installed; install with: %s" % (" and ".join(_missing), INSTALL)
    warnings.warn(_reason)
    sys.stderr.write("\n*** WARNING: %s ***\n" % _reason)
    pytest.skip(_reason, allow_module_level=True)

from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

_spec = importlib.util.spec_from_file_location("build_www", os.path.join(ROOT, "tools", "build_www.py"))
build_www = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_www)


class Simulator:
    """The simulator as a child process on a fixed port; start, stop, start again."""

    def __init__(self, port, log_dir, extra_args=()):
        self.extra_args = list(extra_args)
        script = os.environ.get("MICROWS_SIMULATOR") or os.path.join("tools", "simulate.py")
        self.script = os.path.join(ROOT, script)
        self.port = port
        self.log_path = os.path.join(log_dir, "simulator.log")
        self.proc = None

    def start(self, timeout=20.0):
        if not os.path.isfile(self.script):
            pytest.fail("simulator not found: %s (set MICROWS_SIMULATOR to another script)" % self.script)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, self.script, "--host", "127.0.0.1", "--port", str(self.port)] + self.extra_args,
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("the simulator exited with %s:\n%s" % (self.proc.returncode, self.log()))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        pytest.fail("the simulator did not listen on port %d within %.0f s:\n%s" % (self.port, timeout, self.log()))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.resume()  # a paused one would not act on SIGTERM
            stop_process(self.proc)
        self.proc = None

    def pause(self):
        """SIGSTOP: the process keeps its sockets open but says nothing (a hung device)."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except OSError:
            return ""


class Dashboard:
    def __init__(self, page, sim):
        self.page = page
        self.sim = sim
        self.errors = []
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def js(self, expression, arg=None):
        return self.page.evaluate(expression, arg)

    def wait(self, predicate, arg=None, timeout=10.0, what="condition"):
        try:
            self.page.wait_for_function(predicate, arg=arg, timeout=timeout * 1000, polling=100)
            return
        except PlaywrightTimeout:
            pass
        pytest.fail("timed out (%.0f s) waiting for %s; page: %s\nsimulator log:\n%s"
                    % (timeout, what, self.snapshot(), self.sim.log()), pytrace=False)

    def snapshot(self):
        return self.js("""() => ({state: document.querySelector('#state').dataset.state,
            text: document.querySelector('#state').textContent,
            status: document.querySelector('#status').textContent,
            received: document.querySelector('#received-rate').textContent,
            points: [...document.querySelectorAll('[data-sensor]')].map(e => e.dataset.points),
            notes: [...document.querySelectorAll('[data-sensor] .mm')].map(e => e.textContent)})""")

    def state(self):
        return self.js("() => document.querySelector('#state').dataset.state")

    def points(self):
        """Points received so far: the most of any chart (a sensor may fail a read now and then)."""
        return self.js("() => Math.max(0, ...[...document.querySelectorAll('[data-sensor]')]"
                       ".map(e => +e.dataset.points))")

    def received_rate(self):
        return float(self.page.text_content("#received-rate"))

    def wait_live(self, timeout=10.0):
        self.wait("() => document.querySelector('#state').dataset.state === 'live'", timeout=timeout, what="live")

    def command(self, action, what, timeout=5.0):
        """Do action (a click...), then wait for the device's ack of that command on #status."""
        before = self.js("() => document.querySelector('#status').dataset.id || ''")
        action()
        self.wait("""(before) => { const s = document.querySelector('#status');
                      return s.dataset.id && s.dataset.id !== before && s.dataset.kind !== 'pending'; }""",
                  arg=before, timeout=timeout, what="an answer to " + what)
        kind = self.js("() => document.querySelector('#status').dataset.kind")
        text = self.page.text_content("#status")
        assert kind == "ack", "the device answered %s with an error: %s" % (what, text)
        return text

    def set_rate(self, rate):
        self.page.fill("#rate-input", str(rate))
        return self.command(lambda: self.page.click("#rate-apply"), "rate %s" % rate)

    def count(self, seconds):
        """Points received over seconds, as a rate."""
        p0, t0 = self.points(), time.monotonic()
        self.page.wait_for_timeout(seconds * 1000)
        p1, t1 = self.points(), time.monotonic()
        return (p1 - p0) / (t1 - t0)


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for a test module."""
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
