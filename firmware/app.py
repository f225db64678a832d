"""The device's application: the server, its routes, and the sampling task.

The same App runs on a board (main.py) and on a laptop (tools/simulate.py);
only the board description, the config and the `hw` modules differ.

    /          the dashboard (www/index.html, gzipped when the browser accepts)
    /ws        the stream as JSON text, and commands (firmware/PROTOCOL.md)
    /ws/bin    the same stream as binary samples, and the same commands
    /status    JSON: clients, max_clients, device (the page asks when its
               WebSocket fails: a full device answers the handshake 503)
    and the routes of the user's custom.py (extend.py)
"""

import sys

from access import CommandLimiter
from device import Device, sample_binary, sample_text
from microws.compat import asyncio, sleep_ms, ticks_diff, ticks_ms
from microws.server import Server
from wallclock import NTP_RESYNC_MS, NTP_RETRY_MS

TEXT_PATH = "/ws"
BINARY_PATH = "/ws/bin"
WAKE_MS = 100  # the sampler looks at the rate this often while it waits
READONLY_WHY = {  # hello's "why": never anything about the token itself
    "wrong": "wrong token",
    "refused": "too many wrong tokens from this address: try again later",
}
KEEP_TIME_MS = 60000  # how often uptime looks at the clock, watched or not
JOIN_CHECK_MS = 10000  # NTP: how often to look whether the network is there yet


class App:
    """board, config: checked dicts; hw: the port's modules (sensor_kinds.build_sensors);
    www: folder of the dashboard; log: where messages go (never secrets)."""

    def __init__(self, board, config, hw=None, www="www", log=print, server_options=None, wifi=None):
        hw = hw or {}
        self.clock = hw.get("clock") or ticks_ms
        self.log = log
        self.token = config.get("token") or ""
        self.guard = None  # a token_guard.TokenGuard when there is a token
        if self.token:
            from token_guard import TokenGuard

            self.guard = TokenGuard(self.token, self.clock)
        from sensor_kinds import build_sensors  # here, so that drop_startup_modules() frees it

        sensors = build_sensors(board, config, hw)
        from output_kinds import build_outputs

        outputs = build_outputs(board, hw)
        extend = sys.modules.get("extend")  # loaded only with a custom.py (main.py): heap for the others
        self.device = Device(board, config, sensors, outputs, self.clock, diff=hw.get("ticks_diff"), log=log,
                             host_time=hw.get("host_time"), commands=extend.COMMANDS if extend else None)
        self.ntp = hw.get("ntp") or _ntp_unix_ms  # used only with wifi (a board)
        self.keep_time_ms = KEEP_TIME_MS
        self.wifi = wifi  # a wifi.Keeper on a board; None on a laptop
        self.wifi_sleep = sleep_ms
        if wifi is not None:
            self.device.wifi = wifi
            if wifi.uptime is None:
                wifi.uptime = self.device.uptime_ms
                wifi.changed_ms = wifi.uptime()
        options = {
            "max_clients": board["max_clients"],
            "max_message_size": board["max_message_size"],
            "queue_size": board["queue_size"],
            "log": log,
        }
        if config.get("origins"):
            options["origins"] = config["origins"]
        if server_options:
            options.update(server_options)
        self.server = Server(**options)
        self.server.websocket(TEXT_PATH)(self._dashboard)
        self.server.websocket(BINARY_PATH)(self._dashboard)
        self.server.route("/status")(self.status)
        if extend:
            extend.install_routes(self.server, self.device, log)
        self.server.static("/", www)
        self.text_clients = self.server.group(TEXT_PATH)
        self.binary_clients = self.server.group(BINARY_PATH)
        self.uplink = None  # the MQTT uplink (firmware/uplink.py) when config.json has "mqtt"
        if config.get("mqtt"):
            from uplink import Uplink, fleet_info

            self.mqtt_limiter = CommandLimiter(self.clock)  # one for everything that comes by MQTT
            self.uplink = Uplink(config["mqtt"], self.device.name, self._mqtt_command,
                                 lambda: fleet_info(self.device, self.clients(), 0), log, self.clock)
            self.device.uplink = self.uplink
        self._sampler = None
        self._tasks = []
        self._running = False
        self._history_busy = False  # dashboards take turns with the one chunk buffer

    # ------------------------------------------------------------ clients

    def clients(self):
        return len(self.text_clients) + len(self.binary_clients)

    def status(self, request=None):
        """GET /status: how full the device is, for a page whose WebSocket
        was refused (JavaScript cannot read a failed handshake's 503)."""
        return {"clients": len(self.server.clients), "max_clients": self.server.max_clients,
                "device": self.device.name}

    def access(self, ws):
        """How this client may use the device: "ok" (it presented the token,
        or the device has none), "none" (no token presented), "wrong", or
        "refused" (too many wrong tokens from its address lately)."""
        if not self.token:
            return "ok"
        presented = _query_value(ws.request.query, "token")
        from token_guard import peer_address

        verdict = self.guard.check(peer_address(ws.remote_address), presented)
        if verdict == "refused":
            self.log("access: token attempt refused (too many wrong tokens from one address)")
        return verdict

    async def _dashboard(self, ws):
        verdict = self.access(ws)
        readonly = verdict != "ok"
        limiter = CommandLimiter(self.clock)
        # The live stream starts when the history ends (_send_history): a
        # sample never reaches the page before history rows older than it.
        group = self.text_clients if ws in self.text_clients.clients else self.binary_clients
        group.clients.remove(ws)
        await ws.send(self.device.hello(readonly, READONLY_WHY.get(verdict)))
        await self._send_history(ws, group)
        async for message in ws:
            if not limiter.allow():
                await ws.send(self.device.refuse(
                    message, "too many commands: at most %d per second" % limiter.per_second))
                continue
            reply, change = self.device.handle_command(message, self.clients(), ws.dropped, readonly)
            await ws.send(reply)
            self._changed(change)

    def _changed(self, change):
        """A command changed the rate or an output: every dashboard and the uplink hear it."""
        if change is not None:
            self.text_clients.broadcast(change)
            self.binary_clients.broadcast(change)
            if self.uplink is not None:
                self.uplink.info_changed()

    def _mqtt_command(self, payload, problem=None):
        """A command from <prefix>/cmd, under the WebSocket's rules: the same
        handler, one CommandLimiter for MQTT, read-only without the token
        (carried in the payload; wrong ones count in the TokenGuard as one
        address, "mqtt"). problem: why it is refused unread (too large)."""
        if not self.mqtt_limiter.allow():
            problem = "too many commands: at most %d per second" % self.mqtt_limiter.per_second
        if problem is not None:
            return self.device.refuse(payload, problem)
        readonly = False
        if self.token:
            from uplink import command_token

            readonly = self.guard.check("mqtt", command_token(payload)) != "ok"
        reply, change = self.device.handle_command(payload, self.clients(), self.uplink.dropped, readonly)
        self._changed(change)
        return reply

    async def _send_history(self, ws, group):
        """The history (`h` chunks, oldest first, up to the newest sample),
        right after hello; then the client joins its group's live stream,
        with no sample in between that the history did not have."""
        while self._history_busy:
            await sleep_ms(WAKE_MS)
        self._history_busy = True
        try:
            for chunk in self.device.history_sender.chunks(self.device.wall_at, lambda: group.clients.append(ws)):
                await ws.send(chunk, True)
        finally:
            self._history_busy = False

    # ------------------------------------------------------------ sampling

    def sample_once(self):
        """Read the sensors (into the history, watched or not) and send the
        reading to whoever listens; returns it."""
        reading = self.device.read()
        if self.text_clients or self.uplink is not None:
            text = sample_text(reading)
            if self.text_clients:
                self.text_clients.broadcast(text)
            if self.uplink is not None:
                self.uplink.sample(text)
        if self.binary_clients:
            self.binary_clients.broadcast(sample_binary(reading))
        return reading

    async def _sample_loop(self):
        """Sample at the device's rate, on a fixed schedule that never bursts
        to catch up. Broadcasting never waits, so a slow dashboard cannot
        delay a sample; a rate change takes effect within WAKE_MS."""
        due = ticks_ms()
        while self._running:
            rate = self.device.rate
            try:
                self.sample_once()
            except Exception as error:  # noqa: BLE001 (a bad sensor must not stop the stream)
                self.log("sampling error:", repr(error))
            due += int(1000 / rate)
            while self._running:
                left = ticks_diff(due, ticks_ms())
                if self.device.rate != rate:  # a new rate: its period from the last sample
                    due += int(1000 / self.device.rate) - int(1000 / rate)
                    rate = self.device.rate
                    left = ticks_diff(due, ticks_ms())
                if left <= 0:
                    break
                await sleep_ms(min(left, WAKE_MS))
            if ticks_diff(ticks_ms(), due) > 1000:
                due = ticks_ms()  # fell far behind (a blocking sensor): start afresh

    async def _keep_time(self):
        """Uptime must see the clock more often than every ~6 days (the
        ticks wrap), also when no dashboard is open and nothing samples."""
        while self._running:
            try:
                self.device.keep_time()
            except Exception as error:  # noqa: BLE001 (a clock problem must not end the app)
                self.log("uptime error:", repr(error))
            await sleep_ms(self.keep_time_ms)

    async def _keep_clock(self):
        """NTP on a board: once the network is joined, then every 6 hours
        (every 5 minutes until it answers). ntptime blocks the whole device
        for up to its timeout (1 s, wallclock.NTP_TIMEOUT_S) and its DNS
        look-up, which is why it runs this rarely."""
        while self._running:
            wait = JOIN_CHECK_MS
            if self.wifi.state == "joined":
                try:
                    self._changed(self.device.set_clock(self.ntp(), "ntp"))
                    self.log("clock: set from NTP")
                    wait = NTP_RESYNC_MS
                except ImportError:
                    self.log("clock: this firmware has no ntptime: the first dashboard sets the clock")
                    return
                except Exception as error:  # noqa: BLE001 (no answer: the clock waits)
                    self.log("clock: NTP failed, trying again in %d min: %r" % (NTP_RETRY_MS // 60000, error))
                    wait = NTP_RETRY_MS
            await self.wifi_sleep(wait)

    async def _keep_wifi(self):
        """The Wi-Fi keeper's steps, beside the server (which never stops)."""
        while self._running:
            try:
                wait = self.wifi.poll()
            except Exception as error:  # noqa: BLE001 (a driver error must not end the app)
                self.log("wifi error:", repr(error))
                wait = 5000
            await self.wifi_sleep(wait)

    # ------------------------------------------------------------ running

    async def start(self, host="0.0.0.0", port=80, ssl=None):
        await self.server.start(host, port, ssl)
        self._running = True
        self._sampler = asyncio.create_task(self._sample_loop())
        self._tasks = [asyncio.create_task(self._keep_time())]
        if self.wifi is not None:
            self._tasks.append(asyncio.create_task(self._keep_wifi()))
            if self.device.wall.source != "host":
                self._tasks.append(asyncio.create_task(self._keep_clock()))
        if self.uplink is not None:
            self._tasks.append(asyncio.create_task(self.uplink.run()))
        return self

    async def stop(self):
        self._running = False
        if self._sampler is not None:
            self._sampler.cancel()
            self._sampler = None
        if self.uplink is not None:
            await self.uplink.stop()  # offline, before its task ends
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        await self.server.stop()

    async def serve(self, host="0.0.0.0", port=80, ssl=None, stopped=None):
        """Run until `stopped` (an asyncio.Event) is set, or forever."""
        await self.start(host, port, ssl)
        try:
            if stopped is None:
                stopped = asyncio.Event()
            await stopped.wait()
        finally:
            await self.stop()


# checks of the files, the sensor and output factories, the first Wi-Fi join: needed only to start
STARTUP_MODULES = ("boardfile", "config", "mqtt_config", "sensor_kinds", "output_kinds", "wifi_join")


def drop_startup_modules():
    """Let the collector have the code that only checked the board file and
    the config (about 12 KB of a 32-bit board's heap with .mpy files):
    main.py calls this once the App is made. MicroPython only: on CPython
    a later import would make new classes (ConfigError) beside the old."""
    for name in STARTUP_MODULES:
        sys.modules.pop(name, None)


def _ntp_unix_ms():
    import ntptime
    import time

    from wallclock import ntp_unix_ms

    return ntp_unix_ms(ntptime, time.gmtime(0)[0])


def _query_value(query, name):
    """The raw value of name=... in a query string, or None."""
    for pair in query.split("&"):
        key, sep, value = pair.partition("=")
        if key == name and sep:
            return _unquote(value)
    return None


def _unquote(text):
    """%XX and + decoding, enough for a token typed into a URL."""
    if "%" not in text and "+" not in text:
        return text
    out = bytearray()
    i = 0
    data = text.encode()
    while i < len(data):
        c = data[i]
        if c == 0x25 and i + 2 < len(data) and _is_hex(data[i + 1:i + 3]):
            out.append(int(data[i + 1:i + 3], 16))
            i += 3
            continue
        out.append(0x20 if c == 0x2B else c)
        i += 1
    try:
        return bytes(out).decode()
    except UnicodeError:
        return None


def _is_hex(two):
    return len(two) == 2 and all(c in b"0123456789abcdefABCDEF" for c in two)
