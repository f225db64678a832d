"""The asyncio server: accepts, routes, and moves bytes for the protocol core.

One design on both runtimes. The server makes its WebSocket client slots
when it starts: max_clients of them, each with its connection's receive
buffer, reused for every client after. A client beyond them gets 503
before any 101. Each client has one task: the route's handler, and the
connection is read when the handler receives (its pings answered, its close
seen). One housekeeping task sends keepalive pings, flushes the bounded
queues of slow clients, and reads for handlers that are busy elsewhere.

How bytes reach the socket is the runtime's business, in
runtime_micropython.py and runtime_cpython.py (compat.runtime).

    server = Server()

    @server.websocket("/ws")
    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    server.static("/", "www")
    server.run(port=8080)
"""

import gc
import sys

from .compat import asyncio, const, load_runtime, sleep_ms, ticks_diff, ticks_ms, wait_for_ms
from .connection import (
    EV_BINARY,
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
    OP_BINARY,
    OP_PING,
    OP_TEXT,
    header_size,
    write_header,
)
from .handshake import HeadReader, HTTPError, accept, error_response, offered_subprotocols

runtime = load_runtime()

__all__ = ("Server", "WebSocket", "Group", "Message", "ConnectionClosed")

try:
    from typing import TYPE_CHECKING
except ImportError:  # MicroPython: annotations are strings, never evaluated
    TYPE_CHECKING = False  # type: ignore[misc]
if TYPE_CHECKING:
    from typing import Any, Callable, Iterable, Optional, Sequence, TypeVar, Union

    from circuitpython_typing import ReadableBuffer

    Sendable = Union[str, ReadableBuffer, "Message"]  # str goes as text, a buffer as binary
    Handler = TypeVar("Handler", bound=Callable[..., Any])

PING = b"\x89\x00"  # an empty ping, the keepalive's
SCRATCH_SIZE = 266  # a broadcast frame up to 256 bytes is built here, not allocated
BACKLOG_TICK_MS = 20  # how often slow clients' queues are retried, and handlers away from receive read for
KEEPALIVE_TICK_MS = 1000
# What one connection holds beyond its slot; start() finds it, in one piece
# each (a connection's objects need room, not the heap's small holes), for
# max_clients + 1 connections: the open ones and one being set up. On the
# 64-bit unix port, a browser's 480-byte upgrade request: an open connection
# (socket, Link, task, coroutines, poll entry, the request kept) holds 1.6 KB
# after a collection, and each takes about 2.1 KB with the holes and the
# garbage of the handshakes (host_tests/mp_server/test_mp_start_serves_all.py).
# Objects are counted in words (half on a 32-bit board), the request's lines
# and strings in bytes: 2.4 KB here, 1.6 KB on a board. 240 words for all of
# it (1.9 KB here, 960 B on a board) let 72 of 86 clients in, in 512 KB.
# (Clients whose request heads all come at the same moment hold about 4.5 KB
# each here while they are read: those the heap lacks get the 503 "out of
# heap", and come back.)
_CONNECTION_WORDS = const(200)
_HEAD_BYTES = const(800)
WORD = 8 if sys.maxsize > 1 << 32 else 4
DONE = runtime.Done()  # what send() returns when the frame went out at once
YIELD = runtime.Yield()  # ... and now and then instead, to let other tasks run


def _log(*args):
    print("microws:", *args)


def _closed_error(ws):
    return ConnectionClosed("connection closed (%s)" % ws.close_code)


class Message:
    """A received message where it lies, in the connection's buffer.

    Valid until the next receive: ws.send(msg) echoes it without a copy;
    msg.data() and msg.decode() copy it out.
    """

    def __init__(self, view: memoryview) -> None:
        self.buffer = view  # the whole receive buffer; the message is its first `size` bytes
        self.size = 0
        self.text = False

    def __len__(self) -> int:
        return self.size

    def view(self) -> memoryview:
        return self.buffer[: self.size]

    def data(self) -> bytes:
        return bytes(self.buffer[: self.size])

    def decode(self) -> str:
        return str(self.buffer[: self.size], "utf-8")


class Group:
    """The clients of one WebSocket route, for broadcasting. A handler may
    take its client out of `clients` for a while (the dashboard does, until
    its history is out) and put it back."""

    def __init__(self, server: "Server") -> None:
        self.server = server
        self.clients = []  # type: list[WebSocket]

    def __len__(self) -> int:
        return len(self.clients)

    def __iter__(self):
        return iter(self.clients)

    def broadcast(self, message: "Sendable", text: "Optional[bool]" = None) -> int:
        """Send a message to every client of the route; never waits.

        The frame is built once (in a buffer made in advance, up to 256
        bytes). A client that keeps up gets it written at once. For a slow
        one it waits in a bounded queue, which loses its oldest frame when
        full (counted in ws.dropped): for a sensor stream the newest
        reading matters most. Returns the number of clients.
        """
        clients = self.clients
        if not clients:
            return 0
        if isinstance(message, str):
            message = message.encode("utf-8")
            text = True
        payload = message  # type: Any
        if isinstance(message, Message):
            opcode = OP_TEXT if message.text else OP_BINARY
            payload = message.buffer
            size = message.size
        else:
            opcode = OP_TEXT if text else OP_BINARY
            size = len(message)
        scratch = self.server._scratch
        head = header_size(size)
        if head + size <= len(scratch):
            frame = scratch
            write_header(scratch, 0, opcode, size)
            scratch[head : head + size] = payload if len(payload) == size else memoryview(payload)[:size]
        else:
            frame = bytearray(head + size)
            write_header(frame, 0, opcode, size)
            frame[head:] = payload if len(payload) == size else memoryview(payload)[:size]
        size += head
        shared = None  # the frame as bytes, made only if a client must queue it
        if runtime.WRITES_KEEP_COPIES:  # CPython: one copy, kept by every client's write
            frame = shared = bytes(memoryview(frame)[:size])
        for ws in clients:
            if ws._closed or ws.conn.state != OPEN:
                continue
            if not ws._output(frame, 0, size):
                if shared is None:
                    shared = bytes(memoryview(frame)[:size])
                ws._enqueue(shared)
        return len(clients)


class _Route:
    def __init__(self, server, handler, subprotocols, origins):
        self.handler = handler
        self.subprotocols = subprotocols
        self.origins = origins
        self.group = Group(server)


class WebSocket:
    """One client slot, and the connected client as its handler sees it.

    Made when the server starts, with everything a client needs in steady
    state: the connection and its buffer, the message, the awaitables of
    receive and send, the broadcast queue.
    """

    def __init__(self, server: "Server") -> None:
        self.server = server
        self.conn = Connection(server.max_message_size)
        self.message = Message(self.conn.view)
        self.link = None  # type: Any  # the runtime's socket wrapper, while connected
        self.request = None  # type: Any
        self.subprotocol = None  # type: Optional[str]
        self.dropped = 0  # broadcast frames lost because this client was slow
        self.close_code = None  # type: Optional[int]
        self._closed = True
        self._receiving = False  # the handler waits in receive_message()
        self._held = False  # a message read by housekeeping waits for the handler
        self._lent = False  # the handler holds the message in place: nothing may be read over it
        self._queue = [None] * server.queue_size  # frames waiting for the socket
        self._q_start = 0
        self._q_count = 0
        self._q_offset = 0  # bytes of the first queued frame already sent
        self._progress = 0  # when the queue last moved
        # the handler's frame being written: its header, then its payload
        self._sending = False
        self._s_header = 0
        self._s_payload = None  # type: Any
        self._s_done = 0
        self._s_size = 0
        self._sends = 0  # sends since this client's task last waited
        self._last_seen = 0
        self._last_ping = 0
        self._ping_sent = None  # type: Optional[int]
        self._receiver = runtime.Receiver(self)
        self._sender = runtime.Sender(self)

    def _open(self, link, request, subprotocol):
        self.conn.reset()
        self.link = link
        link.attach(self.conn)
        self.request = request
        self.subprotocol = subprotocol
        self.dropped = 0
        self.close_code = None
        self._closed = False
        self._receiving = self._held = self._sending = self._lent = False
        self._sends = 0
        now = ticks_ms()
        self._last_seen = self._last_ping = self._progress = now
        self._ping_sent = None

    def _release(self):
        """The client is gone: drop what it held, so the slot is clean."""
        queue = self._queue
        for i in range(len(queue)):
            queue[i] = None
        self._q_start = self._q_count = self._q_offset = 0
        self._s_payload = None
        self.link = None
        self.request = None

    @property
    def path(self) -> "Optional[str]":
        return self.request.path if self.request is not None else None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def remote_address(self) -> "Any":
        return self.link.peer if self.link is not None else None

    # ----------------------------------------------------------- receiving

    def receive_message(self) -> "Any":
        """Await the next message without copying it: the slot's Message,
        valid until the next receive. Raises ConnectionClosed at the end.
        Allocates nothing on MicroPython."""
        self._receiving = True
        self._lent = False  # the previous message is given back
        return self._receiver.start()

    async def receive(self) -> "Union[str, bytes]":
        """The next message, copied: str for text, bytes for binary."""
        message = await self.receive_message()
        copy = message.decode() if message.text else message.data()
        self._lent = False
        return copy

    def __aiter__(self) -> "WebSocket":
        return self

    async def __anext__(self) -> "Union[str, bytes]":
        try:
            message = await self.receive_message()
        except ConnectionClosed:
            raise StopAsyncIteration
        copy = message.decode() if message.text else message.data()
        self._lent = False
        return copy

    def _pump(self):
        """Read and parse what has arrived, without waiting.

        True: a message is in self.message. False: nothing more has arrived
        (the caller waits for the socket). Raises ConnectionClosed once the
        connection has ended.
        """
        if self._held:
            self._held = False
            self._receiving = False
            self._lent = True
            return True
        conn = self.conn
        while True:
            if self._closed:
                self._receiving = False
                raise _closed_error(self)
            size = conn.read_size
            if not size:  # the closing handshake is over
                self._finish()
                continue
            try:
                n = self.link.read_now(conn.read_pos, size)
            except OSError:
                n = 0
            if n is None:
                self._sends = 0
                return False
            if not n:
                conn.receive_eof()
                self._finish()
                continue
            self._last_seen = ticks_ms()
            event = conn.received(n)
            if event == EV_NONE:
                continue
            if conn.control_size:  # a pong, or the close reply: before anything else is read
                self._send_control()
            if event == EV_TEXT or event == EV_BINARY:
                message = self.message
                message.size = conn.event_size
                message.text = event == EV_TEXT
                self._receiving = False
                self._lent = True
                return True
            if event == EV_PONG:
                self._ping_sent = None
            elif event == EV_FAILED:
                self.server.log("protocol error, closing with", conn.fail_code, self.remote_address)

    def _finish(self):
        """The connection is over: keep its close code, drop the TCP connection."""
        conn = self.conn
        if self.close_code is None:
            self.close_code = conn.fail_code or conn.close_code or 1006
        self._flush_queue()  # the close reply, if it had to wait
        self._lost()

    # -------------------------------------------------------------- sending

    def send(self, message: "Sendable", text: "Optional[bool]" = None) -> "Any":
        """Send a whole message: str as text, a buffer as binary (text=True:
        as text, the caller vouching for its UTF-8), a received Message as it
        came. Await it: the buffer must stay unchanged until then."""
        # No tuple in between: this path allocates nothing for a buffer or Message.
        if isinstance(message, Message):
            return self._send_frame(OP_TEXT if message.text else OP_BINARY, message.buffer, message.size, True)
        if isinstance(message, str):
            payload = message.encode("utf-8")
            return self._send_frame(OP_TEXT, payload, len(payload), True)
        return self._send_frame(OP_TEXT if text else OP_BINARY, message, len(message), True)

    def _send_frame(self, opcode, payload, size, fin):
        if self._closed:
            raise _closed_error(self)
        if self._sending:  # another task's frame is half written
            return self._send_later(opcode, payload, size, fin)
        self._s_header = self.conn.frame_header(opcode, size, fin)
        self._s_payload = payload
        self._s_size = size
        self._s_done = 0
        self._sending = True
        if not self._continue_send():
            return self._sender.start()
        if self.link.must_drain():  # CPython: past the transport's high water
            return self.link.drain()
        self._sends += 1
        if self._sends >= runtime.SENDS_BEFORE_YIELD:
            self._sends = 0
            return YIELD
        return DONE

    async def _send_later(self, opcode, payload, size, fin):
        waited = 0
        while self._sending and not self._closed:
            await sleep_ms(1)
            waited += 1
            if waited > self.server.send_timeout_ms:
                self._too_slow()
        await self._send_frame(opcode, payload, size, fin)

    def _continue_send(self):
        """Write what the socket takes of the handler's frame: True once all
        of it is out. Frames queued before it go first; once its first byte
        is out, nothing else may come between its bytes."""
        if self._closed:
            self._sending = False
            raise _closed_error(self)
        link = self.link
        if self._s_done == 0 and self._q_count and not self._flush_queue():
            return False
        conn = self.conn
        header = self._s_header
        done = self._s_done
        try:
            if not done:  # header and payload in one write, where the runtime can join them
                done = link.write_frame(conn.header_out, header, self._s_payload, self._s_size)
            while done < header:
                n = link.write_now(conn.header_out, done, header - done)
                if not n:
                    self._s_done = done
                    return False
                done += n
            end = header + self._s_size
            payload = self._s_payload
            while done < end:
                n = link.write_now(payload, done - header, end - done)
                if not n:
                    self._s_done = done
                    return False
                done += n
        except OSError as error:
            self._sending = False
            self._lost()
            raise ConnectionClosed("connection lost: %s" % error)
        self._sending = False
        self._s_payload = None
        return True

    async def send_fragments(self, fragments: "Iterable[Sendable]") -> None:
        """Send one message in fragments (str or buffers, all of one kind);
        nothing else is sent in between."""
        previous = None
        opcode = OP_BINARY
        for fragment in fragments:
            if previous is not None:
                await self._send_frame(opcode, previous, len(previous), False)
            if isinstance(fragment, str):
                fragment = fragment.encode("utf-8")
                opcode = OP_TEXT
            previous = fragment
        if previous is None:
            raise ValueError("no fragments")
        await self._send_frame(opcode, previous, len(previous), True)

    async def ping(self, payload: "ReadableBuffer" = b"") -> None:
        await self._send_frame(OP_PING, payload, len(payload), True)

    def _send_control(self):
        """What the protocol itself answered (a pong, a close), out before
        anything else is read: the core reuses its buffer."""
        conn = self.conn
        size = conn.control_size
        conn.control_size = 0
        if not self._output(conn.control_out, 0, size):
            self._enqueue(bytes(conn.control_out[:size]))

    # ------------------------------------------------------ the send queue

    def _output(self, buf, start, size):
        """Write a whole frame if this client takes it now. False: it did not
        start (a send is half done, frames wait, or no room); the caller
        queues it. A frame that went out in part has its rest queued here."""
        if self._sending or self._q_count or self._closed:
            return False
        link = self.link
        if not link.has_room(size):
            return False
        try:
            n = link.write_now(buf, start, size)
        except OSError:
            self._lost()
            return True
        if n < size:
            self._enqueue(bytes(memoryview(buf)[start + n : start + size]))
        return True

    def _enqueue(self, frame):
        """Queue a frame; a full queue loses its oldest frame that has not
        started going out (counted in dropped)."""
        if self._closed:
            return
        queue = self._queue
        size = len(queue)
        if self._q_count == size:
            self.dropped += 1
            if not self._q_offset:
                queue[self._q_start] = None
                self._q_start = (self._q_start + 1) % size
            elif size == 1:
                return  # its one frame is half out: the new one is lost
            else:  # the first frame is half out: the second goes
                at = (self._q_start + 1) % size
                for _ in range(size - 2):
                    queue[at] = queue[(at + 1) % size]
                    at = (at + 1) % size
            self._q_count -= 1
        if not self._q_count:
            self._progress = ticks_ms()
        queue[(self._q_start + self._q_count) % size] = frame
        self._q_count += 1
        self.server._backlog = True

    def _flush_queue(self):
        """Write queued frames while the socket takes them: True once empty."""
        if self._sending and self._s_done:
            return False
        link = self.link
        queue = self._queue
        while self._q_count:
            frame = queue[self._q_start]
            offset = self._q_offset
            left = len(frame) - offset
            if not offset and not link.has_room(left):
                return False
            try:
                n = link.write_now(frame, offset, left)
            except OSError:
                self._lost()
                return True
            if n:
                self._progress = ticks_ms()
            if n < left:
                self._q_offset = offset + n
                return False
            queue[self._q_start] = None
            self._q_start = (self._q_start + 1) % len(queue)
            self._q_count -= 1
            self._q_offset = 0
        return True

    # -------------------------------------------------------------- closing

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """The closing handshake (7.1.2): send a close, wait for the peer's
        reply up to close_timeout, then drop the connection."""
        if self._closed:
            return
        if self.conn.start_close(code, reason):
            self._send_control()
        timeout = self.server.close_timeout_ms
        if self._receiving:  # the handler's receive reads the reply
            waited = 0
            while not self._closed and waited < timeout:
                await sleep_ms(10)
                waited += 10
        else:
            try:
                await wait_for_ms(self._read_to_end(), timeout)
            except asyncio.TimeoutError:
                pass
        if not self._closed:
            self._lost()

    async def _read_to_end(self):
        """Read, dropping messages, until the connection ends."""
        try:
            while True:
                await self.receive_message()
        except ConnectionClosed:
            pass

    def _fail_now(self, code):
        """Close at once, allocating nothing: for a MemoryError."""
        if not self._closed:
            if self.conn.state == OPEN and self.conn.start_close(code, ""):
                self._send_control()
            self.close_code = code
            self._finish()

    def _too_slow(self):
        self.server.log("closing a client that stopped reading", self.remote_address)
        self._q_count = 0  # what waits will never go: the close goes alone
        self._q_offset = 0
        self.close_code = CLOSE_POLICY_VIOLATION
        if self.conn.state == OPEN and self.conn.start_close(CLOSE_POLICY_VIOLATION, "too slow"):
            if not self._sending:
                self._send_control()
        self._lost()

    def _lost(self):
        """Drop the TCP connection now; whoever waits on it is woken."""
        if self._closed:
            return
        if self.close_code is None:
            self.close_code = 1006
        self._closed = True
        self._sending = False
        self.link.close()

    # ------------------------------------------------- housekeeping's part

    def _tend(self, now, keepalive):
        """Called by the housekeeping task: flush the queue, read for a
        handler busy elsewhere, keepalive. True while this client needs it
        again soon: frames wait, or its handler is away from receive."""
        if self._closed:
            return False
        if self._q_count and not self._sending:
            self._flush_queue()
        if self._q_count and ticks_diff(now, self._progress) > self.server.send_timeout_ms:
            self._too_slow()
            return False
        away = not self._receiving and not self._held and not self._lent and not self._closed
        if away:
            try:
                self._held = self._pump()
                if self._held:
                    self._lent = False  # read ahead, and kept for the handler
                else:
                    self.link.read_soon()  # what arrives meanwhile is read next time
            except ConnectionClosed:
                return False
            except OSError:
                self._lost()
                return False
        if keepalive:
            self._keepalive(now)
        return self._q_count > 0 or (away and not self._held)

    def _keepalive(self, now):
        server = self.server
        if self._closed or self.conn.state != OPEN:
            return
        if self._ping_sent is not None:
            if ticks_diff(now, self._ping_sent) > server.ping_timeout_ms:
                server.log("no pong in time, dropping", self.remote_address)
                self.close_code = CLOSE_INTERNAL_ERROR
                self._lost()
            return
        if server.idle_timeout_ms and ticks_diff(now, self._last_seen) > server.idle_timeout_ms:
            asyncio.create_task(self.close(CLOSE_GOING_AWAY, "idle"))
            return
        if server.ping_interval_ms and ticks_diff(now, self._last_ping) >= server.ping_interval_ms:
            self._last_ping = self._ping_sent = now
            if not self._output(PING, 0, 2):
                self._enqueue(PING)


class Server:
    """An HTTP + WebSocket server on one port.

    Options (seconds for times; defaults fit a small board):
      max_clients=4          WebSocket clients at once; one more gets 503.
                             Their slots and buffers are made by start().
      max_message_size=1024  largest message received (the receive buffer)
      max_head_size=4096     largest HTTP request head (431 beyond)
      head_timeout=5         time to send the request head (slowloris)
      queue_size=8           frames queued per slow client
      send_timeout=10        a client that accepts no data for this long is closed
      ping_interval=20       keepalive ping period (0: no pings)
      ping_timeout=10        time for the pong before the client is dropped
      idle_timeout=0         close a client that sends nothing for so long (0: never)
      close_timeout=2        time for the peer's close reply
      origins=None           allow-list of Origin values for every route ("*": any;
                             None: a browser's Origin must be the Host it used)
      keep_headers=("host", "origin")
                             request headers a WebSocket handler can read in
                             ws.request.header(); the others are dropped
                             after the handshake, to save heap
    """

    def __init__(self, max_clients: int = 4, max_message_size: int = 1024, max_head_size: int = 4096,
                 head_timeout: float = 5, queue_size: int = 8, send_timeout: float = 10,
                 ping_interval: float = 20, ping_timeout: float = 10, idle_timeout: float = 0,
                 close_timeout: float = 2, origins: "Optional[Sequence[Optional[str]]]" = None,
                 keep_headers: "Sequence[str]" = ("host", "origin"),
                 log: "Callable[..., Any]" = _log) -> None:
        if max_clients < 1 or queue_size < 1:
            raise ValueError("max_clients and queue_size must be at least 1")
        gc.collect()  # and again in start(): see there
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
        self.keep_headers = tuple(name.lower() for name in keep_headers)
        self.log = log
        self.clients = []  # type: list[WebSocket]  # every connected WebSocket
        self._free = []  # type: list[WebSocket]  # the slots no client holds
        self._scratch = None  # type: Any
        self._backlog = False  # some client's queue holds frames
        self._ws_routes = {}  # type: dict[str, _Route]
        self._http_routes = {}  # type: dict[str, Any]
        self._static = []  # type: list[tuple[str, str]]
        self._listener = None  # type: Any
        self._housekeeping_task = None  # type: Any
        self._stopped = None  # type: Any
        self._links = []  # type: list[Any]  # every open TCP connection

    # -------------------------------------------------------------- routing

    def websocket(self, path: str, subprotocols: "Optional[Sequence[str]]" = None,
                  origins: "Optional[Sequence[Optional[str]]]" = None) -> "Callable[[Handler], Handler]":
        """Decorator: an async handler(ws) for WebSocket clients of path.

        subprotocols: those this route speaks, in order of preference; the
        client's first offered one that is here is chosen.
        """

        def register(handler):
            self._ws_routes[path] = _Route(self, handler, subprotocols, origins)
            return handler

        return register

    def route(self, path: str, methods: "Sequence[str]" = ("GET",)) -> "Callable[[Handler], Handler]":
        """Decorator: a plain HTTP handler(request) for path.

        It may be async; it returns a Response (microws.http), str (HTML),
        bytes, or a dict/list (JSON). HEAD is answered wherever GET is.
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

    # Heap the application holds per WebSocket client (its own state for
    # each), set before start(): start() finds it beside each connection's.
    client_bytes = 0

    async def start(self, host: str = "0.0.0.0", port: int = 80, ssl: "Any" = None) -> "Server":
        """Make the client slots, start listening; returns at once.

        Raises MemoryError when max_clients slots of max_message_size do
        not fit: lower one of them.
        """
        if not self._free and not self.clients:
            # MicroPython's heap never moves an object, and the import (and
            # whatever ran before) left garbage between live objects.
            # Collected now, the slots fill those holes and the long free
            # run stays whole for the connections. Left to the allocator,
            # which collects only when it finds no room, the slots take the
            # long run and the holes freed after them are too short for a
            # connection: with 512 B messages, 3 clients started in a 110 KiB
            # heap of the unix port instead of 5. (On CPython: harmless.)
            gc.collect()
            try:
                self._scratch = bytearray(SCRATCH_SIZE)
                self._free = [WebSocket(self) for _ in range(self.max_clients)]
                # What each connection takes while it lives (its socket, task,
                # coroutines, request, the app's client_bytes), and one more
                # being set up: if it is not there now, the clients could not
                # be served. (A message copied out by receive() is the
                # handler's to afford: receive_message() copies nothing.)
                working = [bytearray(_CONNECTION_WORDS * WORD + _HEAD_BYTES + self.client_bytes)
                           for _ in range(self.max_clients + 1)]
                del working
            except MemoryError:
                self._free = []
                raise MemoryError("no heap for %d clients of %d bytes: lower max_clients or max_message_size"
                                  % (self.max_clients, self.max_message_size))
        self._stopped = asyncio.Event()
        self._listener = await runtime.listen(self, host, port, ssl)
        self._housekeeping_task = asyncio.create_task(self._housekeeping())
        return self

    @property
    def port(self) -> "Optional[int]":
        """The port actually listened on (useful with port 0)."""
        return self._listener.port if self._listener is not None else None

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
        if self._housekeeping_task is not None:
            self._housekeeping_task.cancel()
            self._housekeeping_task = None
        closing = []
        for ws in list(self.clients):
            closing.append(ws.close(CLOSE_GOING_AWAY, "server shutdown"))
        if closing:
            await asyncio.gather(*closing)
        for link in list(self._links):
            link.close()  # HTTP requests still in progress
        await listener.close()
        if self._stopped is not None:
            self._stopped.set()

    async def _housekeeping(self):
        last_keepalive = ticks_ms()
        while True:
            await sleep_ms(BACKLOG_TICK_MS if self._backlog else KEEPALIVE_TICK_MS)
            now = ticks_ms()
            keepalive = ticks_diff(now, last_keepalive) >= KEEPALIVE_TICK_MS
            if keepalive:
                last_keepalive = now
            soon = False
            for ws in self.clients:
                if ws._tend(now, keepalive):
                    soon = True
            self._backlog = soon

    # --------------------------------------------------------- one client

    async def _serve_client(self, link):
        """One TCP connection, from its request head to its end."""
        self._links.append(link)
        try:
            try:
                request = await wait_for_ms(self._read_head(link), self.head_timeout_ms)
            except asyncio.TimeoutError:
                await link.write_all(error_response(408, "request head too slow"))
                return
            except HTTPError as error:
                await link.write_all(error.response())
                return
            if request is None:
                return  # closed before a request came
            route = self._ws_routes.get(request.path)
            if route is None:
                from .http import serve_http  # only what pages need: loaded on the first

                await serve_http(self, request, link)
                return
            admitted = self._admit(route, request)
            if type(admitted) is bytes:
                await link.write_all(admitted)  # 503, or the HTTP error of a bad upgrade
                return
            # The WebSocket's life, here in this connection's task and frame
            # (a coroutine of its own would hold ~300 B more per client).
            ws, handler, response, subprotocol = admitted
            clients = self.clients
            group = route.group.clients
            try:
                try:
                    ws._open(link, request, subprotocol)
                    await link.write_all(response)
                except BaseException:
                    handler.close()  # never started
                    raise
                try:
                    await handler
                except ConnectionClosed:
                    pass
                except MemoryError:
                    self.log("out of memory serving", request.path, "closing with 1011")
                    ws._fail_now(CLOSE_INTERNAL_ERROR)
                except Exception as error:
                    self.log("handler error on", request.path, repr(error))
                    await ws.close(CLOSE_INTERNAL_ERROR, "internal error")
                else:
                    await ws.close(CLOSE_NORMAL)
            finally:
                if not ws._closed:
                    ws._lost()
                clients.remove(ws)
                if ws in group:  # a handler may hold a client out of its group for a while
                    group.remove(ws)
                ws._release()
                self._free.append(ws)
        except MemoryError:
            # Before a 101 (the WebSocket path handles its own): say so.
            link.refuse()
        except (OSError, EOFError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.log("error serving a client:", repr(error))
        finally:
            self._links.remove(link)
            link.close()

    async def _read_head(self, link):
        head = HeadReader(self.max_head_size)
        while True:
            # One more byte than the head may still hold: an overlong line
            # ends here and feed_line answers 431.
            line = await link.read_line(self.max_head_size - head.size + 1)
            if not line:
                if head.size:
                    raise HTTPError(400, "request head ended early")
                return None
            if head.feed_line(line):
                return head.request()

    def _admit(self, route, request):
        """Everything a client needs is taken before its 101: a slot, the
        response, the handler's coroutine. Returns (the slot, the handler, the
        101 response, the subprotocol), or the error response to send
        instead: 503 beyond max_clients, 4xx for a bad upgrade."""
        if not self._free:
            return error_response(503, "too many clients: %d of %d open" % (
                len(self.clients), self.max_clients), (("Retry-After", "5"),))
        subprotocol = None
        if route.subprotocols:
            for offered in offered_subprotocols(request):
                if offered in route.subprotocols:
                    subprotocol = offered
                    break
        origins = route.origins if route.origins is not None else self.origins
        try:
            response = accept(request, subprotocol, origins)
        except HTTPError as error:
            return error.response()
        # Only what the application may read stays (the rest of the head is
        # heap this connection would hold for its whole life).
        keep = {}
        for name in self.keep_headers:
            value = request.headers.get(name)
            if value is not None:
                keep[name] = value
        request.headers = keep
        ws = self._free.pop()
        clients = self.clients
        group = route.group.clients
        try:
            handler = route.handler(ws)
            clients.append(ws)
            group.append(ws)
            return ws, handler, response, subprotocol
        except MemoryError:
            for held in (clients, group):
                if ws in held:
                    held.remove(ws)
            self._free.append(ws)
            raise
