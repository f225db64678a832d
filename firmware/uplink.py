"""The MQTT uplink: samples, device info and online/offline to a broker,
commands from it (firmware/PROTOCOL.md, "MQTT").

It never stalls the device. The sampler only puts texts into a bounded
queue (when it is full the oldest is dropped and counted); one task
connects (within CONNECT_TIMEOUT_S, then again after a capped backoff),
writes the queues out and reads the commands. A broker that is away, slow
or unreachable costs the sampler and the dashboards nothing.

Replies have a queue of their own and are never dropped: while it is
full no further command is read, so a flood of commands waits in the
broker and TCP instead of costing answers or device memory.

    <prefix>/samples  every sample (or at most `rate` a second): the `s` text
    <prefix>/info     retained: the info answer + sensors, controls, history
    <prefix>/status   retained: online / offline (the last will is offline)
    <prefix>/cmd      commands, as on /ws, with "token" when the device has one
    <prefix>/reply    the answers, as /ws would send them
"""

import json

from device import dumps
from microws.compat import asyncio, sleep_ms, ticks_diff, ticks_ms
from mqtt import Client, MQTTError, tls_context

CONNECT_TIMEOUT_S = 10  # connect and log in within this, or try again later
BACKOFF_MIN_MS = 1000  # the first retry; doubling ...
BACKOFF_MAX_MS = 60000  # ... up to this
WRITE_TIMEOUT_MS = 10000  # a broker that takes nothing for this long is dropped
INFO_EVERY_MS = 30000  # the retained info is published again this often
TICK_MS = 250  # how often the session looks at pings, timeouts and the info timer
HISTORY_ROWS = 60  # samples in the retained info, for a fleet page to draw at once
GOODBYE_TIMEOUT_S = 2
REPLIES_HELD = 4  # answers waiting to be published; then commands wait unread


def command_token(payload):
    """The "token" a command carries, or None (also for what is not a JSON object)."""
    try:
        msg = json.loads(payload)
    except Exception:  # noqa: BLE001 (not JSON: the command handler says so)
        return None
    token = msg.get("token") if type(msg) is dict else None
    return token if type(token) is str else None


def fleet_info(device, clients, dropped):
    """The retained <prefix>/info text: every key of the info answer, plus
    hello's sensors and controls and the last HISTORY_ROWS samples of the
    device's history ring, as the `h` rows (firmware/history.py)."""
    info = json.loads(device.info(clients, dropped))
    hello = json.loads(device.hello())
    info["sensors"] = hello["sensors"]
    info["controls"] = hello.get("controls", [])
    history = device.history
    rows = []
    if history.size:
        seq = max(history.oldest_seq(), history.newest_seq - HISTORY_ROWS + 1)
        while seq <= history.newest_seq:
            rows.append(device.history_sender.row(seq, device.wall_at(history.ms(seq))))
            seq += 1
    return dumps(info)[:-1] + ',"history":[' + ",".join(rows) + "]}"


class Ring:
    """A bounded queue of texts made once: put() drops the oldest when full."""

    def __init__(self, size):
        self._texts = [None] * size  # the oldest at _head
        self._head = 0
        self.count = 0

    def full(self):
        return self.count == len(self._texts)

    def put(self, text):
        """Queue text; True when the oldest had to go to make room."""
        dropped = self.full()
        if dropped:
            self.pop()
        self._texts[(self._head + self.count) % len(self._texts)] = text
        self.count += 1
        return dropped

    def first(self):
        return self._texts[self._head]

    def pop(self):
        self._texts[self._head] = None
        self._head = (self._head + 1) % len(self._texts)
        self.count -= 1


class Uplink:
    """settings: config.json's checked "mqtt" block; name: the device name;
    on_command(payload, problem): the reply text for a command (problem:
    why it is refused before it is read, or None); describe(): the
    retained info text."""

    def __init__(self, settings, name, on_command, describe, log=print, clock=ticks_ms):
        self.host = settings["host"]
        self.port = settings["port"]
        self.tls = bool(settings.get("tls"))
        self.ca = settings.get("ca", "")
        self.prefix = settings.get("prefix") or "microws/" + name
        prefix = self.prefix.encode()
        self.topics = (prefix + b"/samples", prefix + b"/reply")
        self.info_topic = prefix + b"/info"
        self.status_topic = prefix + b"/status"
        self.cmd_topic = prefix + b"/cmd"
        self.on_command = on_command
        self.describe = describe
        self.log = log
        self.clock = clock
        self.client = Client("microws-" + name, self._message, self._oversize, settings.get("user", ""),
                             settings.get("password", ""), (self.status_topic, b"offline", True),
                             settings.get("keepalive", 30))
        self.client.room = asyncio.Event()  # set: the next command may be read
        self.client.room.set()
        rate = settings.get("rate")
        self.interval_ms = int(1000 / rate) if rate else 0  # 0: every sample
        self.samples = Ring(settings.get("queue", 16))
        self.replies = Ring(REPLIES_HELD)
        self.dropped = 0
        self.published = 0
        self.state = "down"
        self._wake = asyncio.Event()
        self._info_due = False
        self._ping_due = False
        self._last_sample = None
        self._failure = None
        self._running = False
        self._tasks = []

    def info(self):
        """The info answer's "mqtt" key."""
        return {"state": self.state, "dropped": self.dropped, "published": self.published}

    # ------------------------------------------------------------ the device's side (never waits)

    def sample(self, text):
        """Queue one `s` text for <prefix>/samples (at most `rate` a second)."""
        if self.interval_ms:
            now = self.clock()
            if self._last_sample is not None and \
                    ticks_diff(now, self._last_sample) < self.interval_ms - self.interval_ms // 10:
                return
            self._last_sample = now
        if self.samples.put(text):
            self.dropped += 1
        self._wake.set()

    def info_changed(self):
        """The rate or an output changed: publish the info again soon."""
        self._info_due = True
        self._wake.set()

    def _reply(self, text):
        self.replies.put(text)  # never full here: the client reads no command while it is
        if self.replies.full():
            self.client.room.clear()
        self._wake.set()

    def _message(self, topic, payload, retained=False):
        if bytes(topic) != self.cmd_topic:
            return
        if retained:  # left on the broker by someone: it would run again at every reconnect
            self.log("mqtt: a retained command on %s ignored (publish commands without retain)"
                     % self.cmd_topic.decode())
            return
        self._reply(self._answer(bytes(payload), None))

    def _oversize(self, topic, size):
        if bytes(topic) != self.cmd_topic:
            return
        overhead = 2 + len(self.cmd_topic)  # the packet's topic: what is left is the command
        self._reply(self._answer(b"", "command too large: %d bytes (at most %d)"
                                 % (size - overhead, self.client.buffer_size - overhead)))

    def _answer(self, payload, problem):
        try:
            return self.on_command(payload, problem)
        except Exception as error:  # noqa: BLE001 (a bug there must not end the uplink)
            return dumps({"t": "error", "error": "internal error: " + type(error).__name__})

    # ------------------------------------------------------------ the connection's side

    async def run(self):
        """Connect, publish, reconnect with capped backoff, until stop()."""
        self._running = True
        backoff = BACKOFF_MIN_MS
        where = "%s:%d" % (self.host, self.port)
        while self._running:
            self.state = "connecting"
            try:
                context = tls_context(self.ca) if self.tls else None  # per attempt: a bad ca file is logged
                await asyncio.wait_for(self.client.connect(self.host, self.port, context), CONNECT_TIMEOUT_S)
            except Exception as error:  # noqa: BLE001 (refused, unreachable, timed out, TLS)
                self.state = "down"
                self.log("mqtt: cannot connect to %s: %s; retrying in %d s" % (where, _reason(error), backoff // 1000))
                await sleep_ms(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_MS)
                continue
            backoff = BACKOFF_MIN_MS
            self.state = "connected"
            self.log("mqtt: connected to %s, topics %s/..." % (where, self.prefix))
            try:
                await self._session()
            except Exception as error:  # noqa: BLE001 (the connection ended: try again)
                self.log("mqtt: connection to %s lost: %s" % (where, _reason(error)))
            self.state = "down"
            if self._running:
                await sleep_ms(BACKOFF_MIN_MS)

    async def _session(self):
        """One connection: the writer and the reader run as tasks; this
        watches pings, the write timeout, the broker's silence and the
        info timer, and ends the connection when one of them fails."""
        client = self.client
        self._failure = None
        self._info_due = True
        self._ping_due = False
        self._tasks = [asyncio.create_task(self._writer()), asyncio.create_task(self._reader())]
        keepalive_ms = client.keepalive * 1000
        now = self.clock()
        heard, seen, pinged, informed, write_began = now, client.packets, now, now, None
        try:
            while self._running and self._failure is None:
                await sleep_ms(TICK_MS)
                now = self.clock()
                if client.packets != seen:
                    seen, heard = client.packets, now
                elif ticks_diff(now, heard) > keepalive_ms + keepalive_ms // 2:
                    self._failure = "no answer from the broker for %d s" % (ticks_diff(now, heard) // 1000)
                if client.writing:
                    write_began = write_began if write_began is not None else now
                    if ticks_diff(now, write_began) > WRITE_TIMEOUT_MS:
                        self._failure = "the broker took nothing for %d s" % (WRITE_TIMEOUT_MS // 1000)
                else:
                    write_began = None
                if ticks_diff(now, pinged) >= keepalive_ms // 2:
                    pinged = now
                    self._ping_due = True
                    self._wake.set()
                if ticks_diff(now, informed) >= INFO_EVERY_MS:
                    informed = now
                    self.info_changed()
        finally:
            self._end_tasks()
            if self._running or self._failure is not None:
                client.abort()  # stop() says goodbye on it otherwise
        if self._failure is not None:
            raise MQTTError(self._failure)

    def _end_tasks(self):
        for task in self._tasks:
            task.cancel()
        self._tasks = []

    def _fail(self, error):
        if self._failure is None:
            self._failure = _reason(error)

    async def _reader(self):
        try:
            await self.client.run()
        except Exception as error:  # noqa: BLE001 (the session ends and says why)
            self._fail(error)

    async def _writer(self):
        """The only task that writes, so packets never interleave."""
        client = self.client
        try:
            await client.publish(self.status_topic, b"online", True)
            await client.subscribe(self.cmd_topic)
            while True:
                if self._ping_due:
                    self._ping_due = False
                    await client.ping()
                if self._info_due:
                    self._info_due = False
                    await self._publish_info()
                while self.replies.count or self.samples.count:
                    is_reply = self.replies.count > 0  # answers first: someone waits for them
                    queue = self.replies if is_reply else self.samples
                    text = queue.first()
                    topic = self.topics[is_reply]
                    payload = text.encode()
                    if client.fits(topic, payload):
                        taken = client.send(topic, payload)  # no coroutine per sample
                    else:
                        await client.publish(topic, payload)
                        taken = True
                    if queue.count and queue.first() is text:  # not dropped meanwhile
                        queue.pop()
                    if is_reply:
                        client.room.set()
                    self.published += 1
                    if not taken:
                        await client.drain()  # the socket is full: wait, the queue bounds the rest
                if self._ping_due or self._info_due:
                    continue
                self._wake.clear()
                await self._wake.wait()
        except Exception as error:  # noqa: BLE001 (the session ends and says why)
            self._fail(error)

    async def _publish_info(self):
        try:
            text = self.describe()
        except Exception as error:  # noqa: BLE001 (a bug there must not end the connection)
            self.log("mqtt: info not published:", _reason(error))
            return
        await self.client.publish(self.info_topic, text.encode(), True)

    async def stop(self):
        """Say offline and disconnect (the broker keeps no will then); a
        broker that does not answer within GOODBYE_TIMEOUT_S gets the will."""
        self._running = False
        self._end_tasks()
        if not self.client.connected:
            return
        try:
            await asyncio.wait_for(self._goodbye(), GOODBYE_TIMEOUT_S)
        except Exception:  # noqa: BLE001 (the will says offline instead)
            self.client.abort()
        self.state = "down"

    async def _goodbye(self):
        await self.client.publish(self.status_topic, b"offline", True)
        await self.client.disconnect()


def _reason(error):
    """An exception's text: MicroPython's OSError has only its errno, and
    a timeout has no text at all."""
    text = str(error)
    return type(error).__name__ + (": " + text if text else "")
