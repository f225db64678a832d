"""A small MQTT 3.1.1 client, just what the uplink needs: QoS 0 publish
(retained or not), one subscription, a last will, keepalive pings, on
asyncio streams, the same code on CPython and MicroPython.

Why not an existing client (the README's "Many devices" says more):
umqtt.simple/robust connect and write with blocking sockets (the event
loop, so sampling and the dashboards, would stop while the broker is
slow or away); mqtt_as runs on MicroPython only; aiomqttc does not run on
the unix port (NameError: TimeoutError) and reads a packet of whatever
length the broker announces into memory. Here every packet is read into
one buffer made at start: a PUBLISH larger than it is read away in pieces
and reported with its size, so a huge payload costs the device nothing.
"""

from microws.compat import IS_MICROPYTHON, asyncio

CONNECT = 0x10
CONNACK = 0x20
PUBLISH = 0x30
SUBSCRIBE = 0x82  # with the reserved flags 0b0010
SUBACK = 0x90
PINGREQ = 0xC0
PINGRESP = 0xD0
DISCONNECT = 0xE0
PING_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"
REFUSED = {1: "unacceptable protocol version", 2: "client id rejected", 3: "server unavailable",
           4: "bad user name or password", 5: "not authorized"}


class MQTTError(Exception):
    """The broker refused us or broke the protocol; the connection is over."""


# ------------------------------------------------------------------ CPython / MicroPython
# MicroPython's Stream reads into a buffer and writes what the socket takes
# at once (only a rest is copied); CPython's StreamReader has no readinto,
# and its transport may keep a view of what it could not send at once
# (3.12 does; 3.11 copied), so a packet from the reused out buffer is copied
# there before it is written. TLS: CPython's
# default context checks the broker against the system's CAs; MicroPython's
# checks nothing unless given a CA (its PROTOCOL_TLS_CLIENT default is
# CERT_NONE), so with a ca file both verify the broker's certificate.

if IS_MICROPYTHON:

    def tls_context(ca):
        """The SSLContext for a broker; ca: a CA certificate file (PEM or DER) or ""."""
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if ca:
            with open(ca, "rb") as f:
                data = f.read()
            if data.startswith(b"-----"):  # PEM: some ports' mbedtls take DER only
                from binascii import a2b_base64

                lines = data.split(b"-----")
                data = a2b_base64(lines[2] if len(lines) > 2 else b"")  # the first certificate
            context.load_verify_locations(cadata=data)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    async def _read_into(stream, view):
        """Read at most len(view) bytes into view; 0 at the end of the stream."""
        return await stream.readinto(view) or 0

    def _abort(writer):
        writer.close()

    def _write_now(writer, data):
        writer.write(data)

    def _unsent(writer):
        """Bytes the socket has not taken yet (Stream.write keeps only a rest)."""
        return len(writer.out_buf)

else:

    def tls_context(ca):
        import ssl

        return ssl.create_default_context(cafile=ca or None)

    async def _read_into(stream, view):
        data = await stream.read(len(view))
        view[:len(data)] = data
        return len(data)

    def _abort(writer):
        writer.transport.abort()  # drop the connection now, unsent data too

    def _write_now(writer, data):
        writer.write(bytes(data))  # a copy: the transport may keep what it is given

    def _unsent(writer):
        return writer.transport.get_write_buffer_size()


def _put_length(buf, at, n):
    """MQTT's variable-length integer at buf[at:]; the index after it."""
    while True:
        byte = n & 0x7F
        n >>= 7
        buf[at] = byte | 0x80 if n else byte
        at += 1
        if not n:
            return at


def _put_text(buf, at, data):
    """A length-prefixed string (bytes) at buf[at:]; the index after it."""
    n = len(data)
    buf[at] = n >> 8
    buf[at + 1] = n & 0xFF
    buf[at + 2:at + 2 + n] = data
    return at + 2 + n


class Client:
    """One connection to a broker at a time.

    on_message(topic, payload, retained): each PUBLISH that fits the buffer
    (memoryviews into it, valid during the call; retained: the broker kept
    it from before we subscribed); on_oversize(topic, size):
    one that did not (topic cut to what fitted). buffer_size bounds what is
    received; out_size, what is sent in one write (a larger publish goes as
    its header and then its payload).
    """

    def __init__(self, client_id, on_message, on_oversize, user="", password="", will=None,
                 keepalive=30, buffer_size=768, out_size=512):
        self.client_id = client_id.encode()
        self.user = user.encode() if user else b""
        self.password = password.encode() if password else b""
        self.will = will  # (topic bytes, payload bytes, retain) or None
        self.keepalive = keepalive
        self.on_message = on_message
        self.on_oversize = on_oversize
        self.buffer_size = buffer_size
        self._in = bytearray(buffer_size)
        self._in_view = memoryview(self._in)
        self._out = bytearray(out_size)
        self._out_view = memoryview(self._out)
        self._stream = None
        self.writing = False  # a write is waiting for the socket (the uplink's watchdog looks)
        self.packets = 0  # packets received, ever: the uplink's keepalive check watches it
        self.room = None  # an asyncio.Event, or None: while it is clear, run() reads nothing more

    @property
    def connected(self):
        return self._stream is not None

    # ------------------------------------------------------------ connecting

    async def connect(self, host, port, ssl=None):
        """Open the connection and log in; MQTTError when refused. The
        caller bounds the time (asyncio.wait_for): a host that never answers
        is otherwise waited for as long as TCP does."""
        reader, writer = await asyncio.open_connection(host, port, ssl=ssl)
        self._stream = (reader, writer)
        try:
            await self._write(self._connect_packet())
            kind, n = await self._read_head()
            if kind != CONNACK or n != 2:
                raise MQTTError("broker answered the connect with packet type 0x%02x" % kind)
            await self._read_exactly(self._in_view[:2])
            code = self._in[1]
            if code:
                raise MQTTError("broker refused the connection: " + REFUSED.get(code, "code %d" % code))
        except BaseException:
            self.abort()
            raise

    def _connect_packet(self):
        flags = 0x02  # clean session
        body = 10 + 2 + len(self.client_id)
        if self.will:
            flags |= 0x04 | (0x20 if self.will[2] else 0)
            body += 4 + len(self.will[0]) + len(self.will[1])
        if self.user:
            flags |= 0x80
            body += 2 + len(self.user)
        if self.password:
            flags |= 0x40
            body += 2 + len(self.password)
        packet = bytearray(5 + body)  # once per connection
        packet[0] = CONNECT
        at = _put_length(packet, 1, body)
        at = _put_text(packet, at, b"MQTT")
        packet[at] = 4  # protocol level: 3.1.1
        packet[at + 1] = flags
        packet[at + 2] = self.keepalive >> 8
        packet[at + 3] = self.keepalive & 0xFF
        at = _put_text(packet, at + 4, self.client_id)
        if self.will:
            at = _put_text(packet, at, self.will[0])
            at = _put_text(packet, at, self.will[1])
        if self.user:
            at = _put_text(packet, at, self.user)
        if self.password:
            at = _put_text(packet, at, self.password)
        return memoryview(packet)[:at]

    def abort(self):
        """Drop the connection at once (no DISCONNECT: the broker sends the will)."""
        stream = self._stream
        self._stream = None
        if stream is not None:
            try:
                _abort(stream[1])
            except Exception:  # noqa: BLE001 (already broken: nothing left to close)
                pass

    async def disconnect(self):
        """Say goodbye (the broker then drops the will) and close."""
        if self._stream is not None:
            try:
                await self._write(DISCONNECT_PACKET)
            except Exception:  # noqa: BLE001 (the connection is going anyway)
                pass
        self.abort()

    # ------------------------------------------------------------ sending

    async def _write(self, data):
        stream = self._stream
        if stream is None:
            raise MQTTError("not connected")
        self.writing = True
        try:
            if data:
                _write_now(stream[1], data)
            await stream[1].drain()
        finally:
            self.writing = False

    def _publish_head(self, topic, size, retain):
        """The PUBLISH header and topic in the out buffer; where the payload goes."""
        out = self._out
        out[0] = PUBLISH | (1 if retain else 0)
        at = _put_length(out, 1, 2 + len(topic) + size)
        return _put_text(out, at, topic)

    def fits(self, topic, payload):
        return 7 + len(topic) + len(payload) <= len(self._out)

    def send(self, topic, payload, retain=False):
        """Write a QoS 0 PUBLISH that fits the out buffer (fits()) without
        waiting: True when the socket took all of it, else await drain()
        before the next. No coroutine, so no allocation but a view."""
        stream = self._stream
        if stream is None:
            raise MQTTError("not connected")
        at = self._publish_head(topic, len(payload), retain)
        end = at + len(payload)
        self._out[at:end] = payload
        _write_now(stream[1], self._out_view[:end])
        return not _unsent(stream[1])

    async def drain(self):
        await self._write(b"")

    async def publish(self, topic, payload, retain=False):
        """QoS 0, waiting until the socket took it. topic: bytes; payload:
        bytes-like. One write when it fits the out buffer, else two."""
        if self.fits(topic, payload):
            if not self.send(topic, payload, retain):
                await self.drain()
            return
        at = self._publish_head(topic, len(payload), retain)
        await self._write(self._out_view[:at])
        await self._write(payload)

    async def subscribe(self, topic, packet_id=1):
        """QoS 0; the SUBACK is checked by the reader (run)."""
        out = self._out
        out[0] = SUBSCRIBE
        at = _put_length(out, 1, 2 + 2 + len(topic) + 1)
        out[at] = packet_id >> 8
        out[at + 1] = packet_id & 0xFF
        at = _put_text(out, at + 2, topic)
        out[at] = 0  # QoS 0
        await self._write(self._out_view[:at + 1])

    async def ping(self):
        await self._write(PING_PACKET)

    # ------------------------------------------------------------ receiving

    async def _read_exactly(self, view):
        stream = self._stream
        if stream is None:
            raise MQTTError("not connected")
        got = 0
        while got < len(view):
            n = await _read_into(stream[0], view[got:])
            if not n:
                raise MQTTError("broker closed the connection")
            got += n

    async def _read_head(self):
        """(packet type byte, remaining length)."""
        one = self._in_view[:1]
        await self._read_exactly(one)
        kind = self._in[0]
        n = 0
        shift = 0
        while True:
            await self._read_exactly(one)
            byte = self._in[0]
            n |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return kind, n
            shift += 7
            if shift > 21:
                raise MQTTError("malformed remaining length")

    async def _skip(self, n):
        """Read n bytes away through the buffer."""
        view = self._in_view
        while n > 0:
            part = min(n, len(view))
            await self._read_exactly(view[:part])
            n -= part

    async def run(self):
        """Read packets until the connection ends (raises MQTTError or OSError)."""
        buf = self._in
        view = self._in_view
        while True:
            if self.room is not None and not self.room.is_set():  # the consumer is full: TCP holds the rest
                await self.room.wait()
            kind, n = await self._read_head()
            self.packets += 1
            kind_high = kind & 0xF0
            if kind_high == PUBLISH:
                if n < 2:
                    raise MQTTError("malformed PUBLISH")
                part = min(n, len(buf))
                await self._read_exactly(view[:part])
                topic_end = 2 + ((buf[0] << 8) | buf[1])
                start = topic_end + (2 if kind & 0x06 else 0)  # QoS 1/2 carry a packet id
                if n > len(buf):
                    self.on_oversize(view[2:min(topic_end, part)], n)  # before the rest overwrites it
                    await self._skip(n - part)
                elif start > n:
                    raise MQTTError("malformed PUBLISH: its topic is longer than the packet")
                else:
                    self.on_message(view[2:topic_end], view[start:n], kind & 0x01)
            elif kind_high == SUBACK:
                await self._read_exactly(view[:min(n, len(buf))])
                await self._skip(n - min(n, len(buf)))
                if n >= 3 and buf[2] == 0x80:
                    raise MQTTError("broker refused the subscription")
            else:  # PINGRESP and anything we did not ask for
                await self._skip(n)
