"""The asyncio server: accepts, routes, and moves bytes for the protocol core.

It runs unchanged on MicroPython's asyncio and CPython's. Per WebSocket
client: the task that accepted it reads frames into the connection's own
buffer; the route's handler runs in a task of its own; a writer task
appears only for broadcasts. One keepalive task serves all clients.

    server = Server()

    @server.websocket("/ws")
    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    server.static("/", "www")
    server.run(port=8080)
"""

from . import compat
from .compat import asyncio, ticks_diff, ticks_ms
from .connection import (
    CLOSED,
    EV_BINARY,
    EV_CLOSE,
    EV_FAILED,
    EV_NONE,
    EV_PONG,
    EV_TEXT,
    OPEN,
    Connection,
    ConnectionClosed,
)
from .frames import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_NORMAL,
    CLOSE_POLICY_VIOLATION,
    MAX_SERVER_HEADER,
    OP_BINARY,
    OP_PING,
    OP_TEXT,
    write_header_before,
)
from .handshake import (
    HandshakeError,
    HeadReader,
    accept,
    error_response,
    offered_subprotocols,
)
from .http import Response, find_static, send_file

__all__ = ("Server", "WebSocket", "Group", "Response", "ConnectionClosed")

try:
    from typing import TYPE_CHECKING
except ImportError:  # MicroPython: annotations are strings, never evaluated
    TYPE_CHECKING = False  # type: ignore[misc]
if TYPE_CHECKING:
    from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, TypeVar, Union

    from circuitpython_typing import ReadableBuffer

    Message = Union[str, ReadableBuffer]  # str goes as text, a buffer as binary
    Handler = TypeVar("Handler", bound=Callable[..., Any])


def _log(*args):
    print("microws:", *args)


def _encode(message):
    """(opcode, payload bytes) of a str (text) or bytes-like (binary) message."""
    if isinstance(message, str):
        return OP_TEXT, message.encode("utf-8")
    return OP_BINARY, message


def encode_message(message: "Message") -> memoryview:
    """A whole unmasked frame, to send the same bytes to many clients."""
    opcode, payload = _encode(message)
    size = len(payload)
    frame = bytearray(MAX_SERVER_HEADER + size)
    frame[MAX_SERVER_HEADER:] = payload
    start = write_header_before(frame, MAX_SERVER_HEADER, opcode, size)
    return memoryview(frame)[start:]


class Group:
    """The clients of one WebSocket route, for broadcasting."""

    def __init__(self) -> None:
        self.clients = []  # type: list[WebSocket]

    def __len__(self) -> int:
        return len(self.clients)

    def __iter__(self) -> "Iterator[WebSocket]":
        return iter(self.clients)

    def broadcast(self, message: "Message") -> int:
        """Queue a message for every client; never waits.

        The frame is encoded once. A client whose queue is full loses its
        oldest unsent message (counted in ws.dropped): for a sensor stream
        the newest reading matters most. Returns the number of clients.
        """
        if not self.clients:
            return 0
        frame = encode_message(message)
        for ws in self.clients:
            ws._enqueue(frame)
        return len(self.clients)


class _Route:
    def __init__(self, handler, subprotocols, origins):
        self.handler = handler
        self.subprotocols = subprotocols
        self.origins = origins
        self.group = Group()


class WebSocket:
    """One connected client, as its handler sees it."""

    def __init__(self, server, reader, writer, request, subprotocol, conn):
        self.server = server
        self.request = request
        self.path = request.path
        self.subprotocol = subprotocol
        self.conn = conn
        self.dropped = 0  # broadcast messages lost because this client was slow
        self.close_code = None
        self._reader = reader
        self._writer = writer
        self._out = compat.Output(writer)  # every write of this connection goes through it
        self._lock = asyncio.Lock()
        self._inbox = []  # received messages waiting for receive(), oldest first
        self._inbox_bytes = 0
        self._inbox_size = server.receive_queue
        self._inbox_max_bytes = server.receive_queue_bytes
        self._inbox_ready = asyncio.Event()
        self._inbox_free = asyncio.Event()
        self._done = asyncio.Event()  # the reading loop has ended
        self._closed = False
        self._queue = None  # broadcast frames, created on first use
        self._queue_start = 0
        self._queue_count = 0
        self._queue_ready = None
        self._writer_task = None
        now = ticks_ms()
        self._last_seen = now
        self._last_ping = now
        self._ping_sent = None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def remote_address(self) -> "Any":
        try:
            return self._writer.get_extra_info("peername")
        except (KeyError, AttributeError):
            return None

    # ----------------------------------------------------------- receiving

    async def receive(self) -> "Union[str, bytes]":
        """The next message: str for text, bytes for binary.

        Raises ConnectionClosed once the connection is closed.
        """
        inbox = self._inbox
        while not inbox:
            if self._closed:
                raise ConnectionClosed("connection closed (%s)" % self.close_code)
            self._inbox_ready.clear()
            await self._inbox_ready.wait()
        return self._take()

    def __aiter__(self) -> "WebSocket":
        return self

    async def __anext__(self) -> "Union[str, bytes]":
        if self._inbox:  # a message is waiting: no second coroutine
            return self._take()
        try:
            return await self.receive()
        except ConnectionClosed:
            raise StopAsyncIteration

    def _take(self):
        message = self._inbox.pop(0)
        self._inbox_bytes -= len(message)
        self._inbox_free.set()
        return message

    async def _deliver(self, message):
        # Queue the message; with the queue full (receive_queue messages or
        # receive_queue_bytes; one message on MicroPython), wait until the
        # handler takes one. Nothing more is read meanwhile: TCP pushes back.
        self._inbox.append(message)
        self._inbox_bytes += len(message)
        self._inbox_ready.set()
        if len(self._inbox) >= self._inbox_size or self._inbox_bytes >= self._inbox_max_bytes:
            await self._wait_for_room()

    async def _wait_for_room(self):
        inbox = self._inbox
        while ((len(inbox) >= self._inbox_size or self._inbox_bytes >= self._inbox_max_bytes)
               and not self._closed):
            self._inbox_free.clear()
            await self._inbox_free.wait()

    async def _caught_up(self):
        # Before the protocol's own reply (a pong, a close): the handler
        # takes, and so answers, every message that came before it.
        while self._inbox and not self._closed:
            self._inbox_free.clear()
            await self._inbox_free.wait()

    # -------------------------------------------------------------- sending

    async def send(self, message: "Message") -> None:
        """Send a whole message: str as text, bytes-like as binary."""
        if isinstance(message, str):
            opcode = OP_TEXT
            payload = message.encode("utf-8")  # type: ReadableBuffer
        else:
            opcode = OP_BINARY
            payload = message
        if self._lock.locked():  # fragments or a broadcast frame are going out
            async with self._lock:
                self._write_message(opcode, payload)
                await self._drain()
            return
        # One frame written with no await in between needs no lock.
        self._write_message(opcode, payload)
        if self._out.must_drain():
            await self._drain()

    def _write_message(self, opcode, payload):
        size = self._header(opcode, len(payload), True)
        out = self._out
        if len(payload) <= 256:
            out.write(bytes(self.conn.header_view(size)) + payload)
        else:
            out.write(self.conn.header_view(size))
            out.write(payload)

    async def send_fragments(self, fragments: "Iterable[Message]") -> None:
        """Send one message in fragments (a list or other iterable of str or
        bytes, all of one kind); nothing else is sent in between."""
        async with self._lock:
            previous = None
            for fragment in fragments:
                if previous is not None:
                    await self._write_frame(previous[0], previous[1], False)
                previous = _encode(fragment)
            if previous is None:
                raise ValueError("no fragments")
            await self._write_frame(previous[0], previous[1], True)

    async def ping(self, payload: "ReadableBuffer" = b"") -> None:
        async with self._lock:
            await self._write_frame(OP_PING, payload, True)

    async def _write_frame(self, opcode, payload, fin):
        size = self._header(opcode, len(payload), fin)
        self._out.write(self.conn.header_view(size))
        self._out.write(payload)
        await self._drain()

    def _header(self, opcode, length, fin):
        if self._closed:
            raise ConnectionClosed("connection closed (%s)" % self.close_code)
        return self.conn.frame_header(opcode, length, fin)

    async def _drain(self):
        try:
            await self._out.drain()
        except OSError as error:  # ConnectionError is one (and MicroPython has no such name)
            self._lost()
            raise ConnectionClosed("connection lost: %s" % error)

    async def _send_control(self):
        """Send what the protocol itself answered (pong, close) under the lock."""
        conn = self.conn
        if not conn.control_size:
            return
        async with self._lock:
            if not conn.control_size:  # sent by someone else meanwhile
                return
            self._out.write(conn.control_view())
            conn.control_size = 0
            if not self._out.must_drain():
                return
            try:
                await compat.wait_for_ms(self._out.drain(), self.server.close_timeout_ms)
            except Exception:
                self._lost()

    # ------------------------------------------------------------ broadcast

    def _enqueue(self, frame):
        """Add a frame to this client's bounded queue, dropping the oldest."""
        if self._closed:
            return
        if (not self._queue_count and not self._lock.locked() and self.conn.state == OPEN
                and self._out.has_room(len(frame))):
            # Nothing waits ahead of it and the client keeps up: straight out
            # (CPython only: MicroPython's output never has room).
            self._out.write(frame)
            return
        size = self.server.queue_size
        if self._queue is None:
            self._queue = [None] * size
            self._queue_ready = asyncio.Event()
            self._writer_task = asyncio.create_task(self._write_queue())
        if self._queue_count == size:
            self._queue[self._queue_start] = None
            self._queue_start = (self._queue_start + 1) % size
            self._queue_count -= 1
            self.dropped += 1
        self._queue[(self._queue_start + self._queue_count) % size] = frame
        self._queue_count += 1
        self._queue_ready.set()

    async def _write_queue(self):
        """The writer task: send queued frames; a client that takes longer
        than send_timeout to accept one is too slow and is closed (1008)."""
        queue = self._queue
        try:
            while not self._closed:
                if not self._queue_count:
                    self._queue_ready.clear()
                    await self._queue_ready.wait()
                    continue
                frame = queue[self._queue_start]
                queue[self._queue_start] = None
                self._queue_start = (self._queue_start + 1) % len(queue)
                self._queue_count -= 1
                async with self._lock:
                    if self._closed or self.conn.state != OPEN:
                        break
                    out = self._out
                    out.write(frame)
                    if not out.must_drain():
                        continue
                    try:
                        await compat.wait_for_ms(out.drain(), self.server.send_timeout_ms)
                    except asyncio.TimeoutError:
                        self._too_slow()
                        break
        except OSError:
            self._lost()
        except asyncio.CancelledError:
            pass

    def _too_slow(self):
        self.server.log("closing a client that stopped reading", self.remote_address)
        if self.conn.state == OPEN and self.conn.start_close(CLOSE_POLICY_VIOLATION, "too slow"):
            try:
                self._out.write(self.conn.control_view())  # best effort
                self._out.flush()
            except OSError:
                pass
        self.close_code = CLOSE_POLICY_VIOLATION
        self._lost()

    # -------------------------------------------------------------- closing

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """The closing handshake (7.1.2): send a close, wait for the peer's
        reply up to close_timeout, then drop the connection."""
        conn = self.conn
        if conn.start_close(code, reason):
            await self._send_control()
        if not self._done.is_set():
            try:
                await compat.wait_for_ms(self._done.wait(), self.server.close_timeout_ms)
            except asyncio.TimeoutError:
                self._lost()

    def _lost(self):
        """Drop the TCP connection now; the reading loop then ends."""
        if self.close_code is None:
            self.close_code = 1006
        compat.abort(self._writer)
        self._mark_closed()

    def _mark_closed(self):
        if self._closed:
            return
        self._closed = True
        self._inbox_ready.set()  # wake receive()
        self._inbox_free.set()
        if self._queue_ready is not None:
            self._queue_ready.set()  # let the writer task end

    # ---------------------------------------------------------- reading loop

    async def _read_loop(self):
        """Read frames until the connection closes; hand messages over."""
        conn = self.conn
        reader = self._reader
        close_timeout = self.server.close_timeout_ms
        chunk = compat.READ_CHUNK
        try:
            while conn.read_size and not self._closed:
                if chunk:  # CPython: what has arrived, often many frames
                    if conn.state == OPEN:
                        data = await reader.read(chunk)
                    else:  # closing: the peer has close_timeout to answer
                        data = await compat.wait_for_ms(reader.read(chunk), close_timeout)
                    if not data:
                        conn.receive_eof()
                        break
                    self._last_seen = ticks_ms()
                    await self._feed(data)
                    continue
                # MicroPython: exactly what the parser asks for, into its buffer
                view = conn.receive_view()
                if conn.state == OPEN:
                    n = await compat.read_into(reader, view)
                else:
                    n = await compat.wait_for_ms(compat.read_into(reader, view), close_timeout)
                if not n:
                    conn.receive_eof()
                    break
                self._last_seen = ticks_ms()
                event = conn.received(n)
                if event != EV_NONE:
                    await self._event(event)
        except asyncio.TimeoutError:
            pass  # no close reply in time
        except (OSError, EOFError):
            pass
        finally:
            if conn.state == CLOSED and self.close_code is None:
                self.close_code = conn.fail_code or conn.close_code
            if self.close_code is None:
                self.close_code = conn.fail_code or 1006
            self._mark_closed()
            self._done.set()
            self._out.flush()
            await compat.close_stream(self._writer)

    async def _feed(self, data):
        """Give the parser bytes already read, as many at a time as it asks for."""
        conn = self.conn
        buf = conn.buffer
        data = memoryview(data)
        i = 0
        end = len(data)
        while i < end and conn.read_size and not self._closed:
            n = conn.read_size
            if n > end - i:
                n = end - i
            pos = conn.read_pos
            buf[pos : pos + n] = data[i : i + n]
            i += n
            event = conn.received(n)
            if event == EV_NONE:
                continue
            if event == EV_BINARY and not conn.control_size:  # _deliver(), inlined
                inbox = self._inbox
                inbox.append(conn.event_payload())
                self._inbox_bytes += conn.event_size
                self._inbox_ready.set()
                if len(inbox) >= self._inbox_size or self._inbox_bytes >= self._inbox_max_bytes:
                    await self._wait_for_room()
            else:
                await self._event(event)

    async def _event(self, event):
        """Act on what received() reported."""
        conn = self.conn
        if conn.control_size:
            await self._caught_up()
            await self._send_control()
        if event == EV_TEXT:
            await self._deliver(conn.event_text())
        elif event == EV_BINARY:
            await self._deliver(conn.event_payload())
        elif event == EV_PONG:
            self._ping_sent = None
        elif event == EV_FAILED:
            self.server.log("protocol error, closing with", conn.fail_code, self.remote_address)

    # ------------------------------------------------------------- keepalive

    def _keepalive(self, now, server):
        """Called by the server's keepalive task about once a second."""
        if self._closed or self.conn.state != OPEN:
            return
        if self._ping_sent is not None:
            if ticks_diff(now, self._ping_sent) > server.ping_timeout_ms:
                self.server.log("no pong in time, dropping", self.remote_address)
                self.close_code = CLOSE_INTERNAL_ERROR
                self._lost()
            return
        if server.idle_timeout_ms and ticks_diff(now, self._last_seen) > server.idle_timeout_ms:
            asyncio.create_task(self.close(CLOSE_GOING_AWAY, "idle"))
            return
        if server.ping_interval_ms and ticks_diff(now, self._last_ping) >= server.ping_interval_ms:
            if self._lock.locked():
                return  # a write is under way; ping next time
            self._last_ping = self._ping_sent = now
            size = self.conn.frame_header(OP_PING, 0)
            try:
                self._out.write(self.conn.header_view(size))
            except OSError:
                self._lost()


class Server:
    """An HTTP + WebSocket server on one port.

    Options (seconds for times; defaults fit a small board):
      max_clients=4          WebSocket clients at once; one more gets 503
      max_message_size=1024  largest message received (the receive buffer)
      max_head_size=4096     largest HTTP request head (431 beyond)
      head_timeout=5         time to send the request head (slowloris)
      queue_size=8           broadcast messages queued per client
      send_timeout=10        a client that accepts no data for this long is closed
      ping_interval=20       keepalive ping period (0: no pings)
      ping_timeout=10        time for the pong before the client is dropped
      idle_timeout=0         close a client that sends nothing for so long (0: never)
      close_timeout=2        time for the peer's close reply
      origins=None           allow-list of Origin values for every route

    Attributes (set them before start()):
      receive_queue          received messages that may wait for a client's
                             handler: 1 on MicroPython (heap), 64 on CPython
      receive_queue_bytes    ... or this many bytes of them (64 KiB)
    """

    def __init__(self, max_clients: int = 4, max_message_size: int = 1024, max_head_size: int = 4096,
                 head_timeout: float = 5, queue_size: int = 8, send_timeout: float = 10,
                 ping_interval: float = 20, ping_timeout: float = 10, idle_timeout: float = 0,
                 close_timeout: float = 2, origins: "Optional[Sequence[Optional[str]]]" = None,
                 log: "Callable[..., Any]" = _log) -> None:
        self.max_clients = max_clients
        self.max_message_size = max_message_size
        self.max_head_size = max_head_size
        self.head_timeout_ms = int(head_timeout * 1000)
        self.queue_size = queue_size
        self.send_timeout_ms = int(send_timeout * 1000)
        self.ping_interval_ms = int(ping_interval * 1000)
        self.ping_timeout_ms = int(ping_timeout * 1000)
        self.idle_timeout_ms = int(idle_timeout * 1000)
        self.close_timeout_ms = int(close_timeout * 1000)
        self.origins = origins
        self.log = log
        self.receive_queue = compat.RECEIVE_QUEUE
        self.receive_queue_bytes = compat.RECEIVE_QUEUE_BYTES
        self.clients = []  # type: list[WebSocket]  # every connected WebSocket
        self._ws_routes = {}  # type: dict[str, _Route]
        self._http_routes = {}  # type: dict[str, Any]
        self._static = []  # type: list[tuple[str, str]]
        self._listener = None  # type: Any
        self._keepalive_task = None  # type: Any
        self._stopped = None  # type: Any
        self._connections = []  # type: list[Any]  # writers of every open TCP connection

    # -------------------------------------------------------------- routing

    def websocket(self, path: str, subprotocols: "Optional[Sequence[str]]" = None,
                  origins: "Optional[Sequence[Optional[str]]]" = None) -> "Callable[[Handler], Handler]":
        """Decorator: an async handler(ws) for WebSocket clients of path.

        subprotocols: those this route speaks, in order of preference; the
        client's first offered one that is here is chosen.
        """

        def register(handler):
            self._ws_routes[path] = _Route(handler, subprotocols, origins)
            return handler

        return register

    def route(self, path: str, methods: "Sequence[str]" = ("GET",)) -> "Callable[[Handler], Handler]":
        """Decorator: a plain HTTP handler(request) for path.

        It may be async; it returns a Response, str (HTML), bytes, or a
        dict/list (JSON). HEAD is answered wherever GET is.
        """

        def register(handler):
            self._http_routes[path] = (handler, methods)
            return handler

        return register

    def static(self, prefix: str, folder: str) -> None:
        """Serve the files of folder under URL prefix (GET and HEAD)."""
        if not prefix.endswith("/"):
            prefix += "/"
        self._static.append((prefix, folder))

    def group(self, path: str) -> Group:
        """The clients of a WebSocket route, for broadcast()."""
        return self._ws_routes[path].group

    # -------------------------------------------------------------- running

    async def start(self, host: str = "0.0.0.0", port: int = 80, ssl: "Any" = None) -> "Server":
        """Start listening; returns at once, the server runs in tasks."""
        self._stopped = asyncio.Event()
        if ssl is None:
            self._listener = await asyncio.start_server(self._serve_client, host, port)
        else:
            self._listener = await asyncio.start_server(self._serve_client, host, port, ssl=ssl)
        if self.ping_interval_ms or self.idle_timeout_ms:
            self._keepalive_task = asyncio.create_task(self._keepalive_loop())
        return self

    @property
    def port(self) -> "Optional[int]":
        """The port actually listened on (CPython; useful with port 0)."""
        sockets = getattr(self._listener, "sockets", None)
        if sockets:
            return sockets[0].getsockname()[1]
        return None

    async def serve_forever(self, host: str = "0.0.0.0", port: int = 80, ssl: "Any" = None) -> None:
        await self.start(host, port, ssl)
        try:
            await self._stopped.wait()
        finally:
            await self.stop()

    def run(self, host: str = "0.0.0.0", port: int = 80, ssl: "Any" = None) -> None:
        """Start and serve until stop() or Ctrl-C."""
        try:
            asyncio.run(self.serve_forever(host, port, ssl))
        except KeyboardInterrupt:
            pass

    async def stop(self) -> None:
        """Stop listening; every client gets a close 1001, then goes."""
        if self._listener is None:
            return
        listener = self._listener
        self._listener = None
        listener.close()
        if self._keepalive_task is not None:
            self._keepalive_task.cancel()
            self._keepalive_task = None
        closing = []
        for ws in list(self.clients):
            closing.append(ws.close(CLOSE_GOING_AWAY, "server shutdown"))
        if closing:
            await asyncio.gather(*closing)
        for writer in list(self._connections):
            compat.abort(writer)  # HTTP requests still in progress
        try:
            await compat.wait_for_ms(listener.wait_closed(), 1000)
        except asyncio.TimeoutError:
            pass
        if self._stopped is not None:
            self._stopped.set()

    async def _keepalive_loop(self):
        while True:
            await compat.sleep_ms(1000)
            now = ticks_ms()
            for ws in list(self.clients):
                ws._keepalive(now, self)

    # --------------------------------------------------------- one client

    async def _serve_client(self, reader, writer):
        self._connections.append(writer)
        try:
            try:
                request = await compat.wait_for_ms(self._read_head(reader), self.head_timeout_ms)
            except asyncio.TimeoutError:
                await self._answer(writer, error_response(408, "request head too slow"))
                return
            except HandshakeError as error:
                await self._answer(writer, error.response())
                return
            if request is None:
                return  # closed before a request came
            if request.path in self._ws_routes:
                await self._serve_websocket(request, reader, writer)
            else:
                await self._serve_http(request, writer)
        except (OSError, EOFError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.log("error serving a client:", repr(error))
        finally:
            self._connections.remove(writer)
            await compat.close_stream(writer)

    async def _read_head(self, reader):
        head = HeadReader(self.max_head_size)
        while True:
            # One more byte than the head may still hold: an overlong line
            # ends here and feed_line answers 431.
            line = await _read_line(reader, self.max_head_size - head.size + 1)
            if not line:
                if head.size:
                    raise HandshakeError(400, "request head ended early")
                return None
            if head.feed_line(line):
                return head.request()

    async def _answer(self, writer, response):
        writer.write(response)
        await writer.drain()

    async def _serve_websocket(self, request, reader, writer):
        route = self._ws_routes[request.path]
        try:
            if len(self.clients) >= self.max_clients:
                raise HandshakeError(503, "too many clients", (("Retry-After", "5"),))
            subprotocol = None
            if route.subprotocols:
                for offered in offered_subprotocols(request):
                    if offered in route.subprotocols:
                        subprotocol = offered
                        break
            origins = route.origins if route.origins is not None else self.origins
            response = accept(request, subprotocol, origins)
        except HandshakeError as error:
            await self._answer(writer, error.response())
            return
        await self._answer(writer, response)
        conn = Connection(self.max_message_size)
        ws = WebSocket(self, reader, writer, request, subprotocol, conn)
        self.clients.append(ws)
        route.group.clients.append(ws)
        handler_task = asyncio.create_task(self._run_handler(route.handler, ws))
        try:
            await ws._read_loop()
        finally:
            self.clients.remove(ws)
            route.group.clients.remove(ws)
            if ws._writer_task is not None:
                ws._writer_task.cancel()
        try:
            await compat.wait_for_ms(handler_task, self.close_timeout_ms)
        except asyncio.TimeoutError:
            handler_task.cancel()  # a handler that ignores its closed connection

    async def _run_handler(self, handler, ws):
        try:
            await handler(ws)
        except ConnectionClosed:
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.log("handler error on", ws.path, repr(error))
            await ws.close(CLOSE_INTERNAL_ERROR, "internal error")
            return
        await ws.close(CLOSE_NORMAL)

    async def _serve_http(self, request, writer):
        method = request.method
        head_only = method == "HEAD"
        try:
            if request.path in self._http_routes:
                handler, methods = self._http_routes[request.path]
                if method not in methods and not (head_only and "GET" in methods):
                    raise HandshakeError(405, "method not allowed", (("Allow", ", ".join(methods)),))
                result = handler(request)
                if hasattr(result, "send"):  # a coroutine: the handler was async
                    result = await result
                response = Response.from_result(result)
                writer.write(response.head())
                if not head_only:
                    writer.write(response.body)
                await writer.drain()
                return
            for prefix, folder in self._static:
                if request.path.startswith(prefix) or request.path + "/" == prefix:
                    if method != "GET" and not head_only:
                        raise HandshakeError(405, "method not allowed", (("Allow", "GET, HEAD"),))
                    rest = request.path[len(prefix) - 1 :] or "/"
                    path, gzipped = find_static(folder, _Rebased(request, rest))
                    name = path[:-3] if gzipped else path
                    await send_file(writer, path, name, gzipped, head_only)
                    return
            raise HandshakeError(404, "not found")
        except HandshakeError as error:
            response = error.response()
            if head_only:
                response = response[: response.find(b"\r\n\r\n") + 4]
            await self._answer(writer, response)


async def _read_line(reader, limit):
    """One line of at most `limit` bytes.

    Not reader.readline(): MicroPython's has no limit, so a client sending
    one endless line would fill the heap. Byte by byte costs a few hundred
    reads per request head, and never reads past the head's end (frames
    may follow it at once).
    """
    line = bytearray()
    while len(line) < limit:
        byte = await reader.read(1)
        if not byte:
            break
        line += byte
        if byte == b"\n":
            break
    return bytes(line)


class _Rebased:
    """A request seen with its path relative to a static mount."""

    def __init__(self, request, path):
        self.path = path
        self.header = request.header

