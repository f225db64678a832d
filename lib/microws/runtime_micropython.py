"""The server's I/O on MicroPython: its sockets, driven without allocating.

Why not asyncio's streams, as on CPython: every awaited read there creates a
generator, every wait in asyncio's I/O queue allocates a list and a poll
entry, a write the socket does not take grows `out_buf` without bound, and
the accepting task dies on the first MemoryError. Here:

- the server accepts connections itself, and a MemoryError while taking
  one on answers it with a 503 made in advance;
- each WebSocket's socket stays registered in asyncio's I/O queue for the
  life of the connection ("parked"), so waiting for it allocates nothing;
- the waits are awaitable objects made once per client slot, which end with
  a StopIteration made once too.

This uses two internals of MicroPython's asyncio (core._io_queue and its
map of [reader, pri, writer, socket] entries, MicroPython 1.23 on). Where
they differ, parking is off and waits allocate as they do in asyncio.
"""

from asyncio import core

try:
    from errno import EAGAIN
except ImportError:
    EAGAIN = 11

_io = getattr(core, "_io_queue", None)  # None: a port without sockets (WebAssembly)
# Parking needs the 4-slot entries (read, pri, write, socket) of 1.23 and later.
_CAN_PARK = hasattr(_io, "queue_pri") and hasattr(_io, "map")
POLLPRI = 2

BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 12\r\nConnection: close\r\nRetry-After: 5\r\n\r\nout of heap\n"

SENDS_BEFORE_YIELD = 16  # a handler that only sends lets other tasks run this often

_parked = []  # type: list  # links whose socket is parked


def _parker():
    """Holds the parked sockets' unused POLLPRI slot; runs only when one
    reports TCP urgent data (lwIP never does; a hostile host can). That
    socket is unparked for good, so the urgent data cannot spin the poller."""
    while True:
        yield
        for link in _parked:
            entry = _io.map.get(id(link.sock))
            if entry is None or entry[1] is None:
                link.parked = False
        i = 0
        while i < len(_parked):
            if _parked[i].parked:
                i += 1
            else:
                _parked.pop(i)


_parker_task = None


def _park(link):
    global _parker_task
    if not _CAN_PARK:
        return
    if _parker_task is None:
        _parker_task = core.create_task(_parker())
    sock = link.sock
    entry = _io.map.get(id(sock))
    if entry is None:
        _io.map[id(sock)] = [None, _parker_task, None, sock]
        _io.poller.register(sock, POLLPRI)
    elif entry[1] is None:
        entry[1] = _parker_task
    else:
        return
    link.parked = True
    _parked.append(link)


def _unpark(link):
    if not link.parked:
        return
    link.parked = False
    if link in _parked:
        _parked.remove(link)
    sock = link.sock
    entry = _io.map.get(id(sock))
    if entry is None:
        return
    entry[1] = None
    if entry[0] is None and entry[2] is None:
        _io._dequeue(sock)
    else:
        _io.poller.modify(sock, _io._ev_mask(entry))


def _nodelay(sock, socket):
    # A frame is one write; without this, Nagle holds it back ~40 ms
    # behind the previous one's ACK. IPPROTO_TCP 6, TCP_NODELAY 1 where
    # the port lacks the names.
    try:
        sock.setsockopt(getattr(socket, "IPPROTO_TCP", 6), getattr(socket, "TCP_NODELAY", 1), 1)
    except (OSError, AttributeError, TypeError):
        pass


class Link:
    """One TCP connection's socket, as the server uses it."""

    def __init__(self, sock, peer):
        self.sock = sock
        self.peer = peer
        self.parked = False
        self.view = None  # the slot's buffer, as views at 0 and 2 (set by attach)
        self.view2 = None
        self.buffer = None

    # ----------------------------------------------- request head, plain HTTP

    def read_line(self, limit):
        """One line of at most `limit` bytes (a generator used as coroutine)."""
        line = b""
        while True:
            yield _io.queue_read(self.sock)
            part = self.sock.readline(limit - len(line))
            if part is None:
                continue
            line += part
            if not part or line[-1] == 10 or len(line) >= limit:
                return line

    def write_all(self, data):
        """Write data (a generator used as coroutine), waiting while the socket is full."""
        view = memoryview(data)
        done = 0
        while done < len(view):
            n = self.sock.write(view, done, len(view) - done)
            if n is None:
                yield _io.queue_write(self.sock)
            else:
                done += n

    # ----------------------------------------------------------- WebSocket

    def attach(self, conn):
        """The connection's buffer becomes this link's; the socket is parked."""
        self.buffer = conn.buffer
        self.view = conn.view
        self.view2 = conn.view2
        _park(self)

    def read_now(self, pos, size):
        """Bytes read at buffer[pos:], up to size: None when nothing has
        arrived, 0 at the end of the stream. Reads at 0 and 2 (a frame's
        header, its extended length and mask, a whole message's payload)
        allocate nothing; elsewhere (fragments, a payload split across reads)
        a view is made."""
        try:
            if pos == 0:
                return self.sock.readinto(self.buffer, size)
            if pos == 2:
                return self.sock.readinto(self.view2, size)
            return self.sock.readinto(self.view[pos : pos + size])
        except OSError as error:
            if error.errno == EAGAIN:
                return None  # TLS: a record is incomplete
            raise

    def write_now(self, buf, start, size):
        """Write what the socket takes now; the number of bytes taken."""
        try:
            n = self.sock.write(buf, start, size)
        except OSError as error:
            if error.errno == EAGAIN:
                return 0
            raise
        return n or 0

    def has_room(self, size):
        return True  # the socket says how much it takes

    def must_drain(self):
        return False  # nothing is kept here that the socket did not take

    def wait_readable(self):
        _io.queue_read(self.sock)

    def wait_writable(self):
        _io.queue_write(self.sock)

    def close(self):
        """Close the socket; a task waiting on it is woken, to find it closed
        (a closed socket left in the poller would never wake it)."""
        sock = self.sock
        if sock is None:
            return
        _unpark(self)
        entry = _io.map.get(id(sock))
        if entry is not None:
            for task in (entry[0], entry[2]):
                if task is not None:
                    core._task_queue.push(task)
            _io._dequeue(sock)
        self.sock = None
        try:
            sock.close()
        except OSError:
            pass


def yield_now():
    """Let the other ready tasks run once (from an awaitable's __next__)."""
    core._task_queue.push(core.cur_task)


class Receiver:
    """ws.receive_message(): one awaitable per client slot, reused.

    Each __next__ reads what has arrived; it returns (a yield to asyncio)
    after queueing the task on the socket, or ends with the slot's message.
    """

    def __init__(self, ws):
        self.ws = ws
        self.done = StopIteration(ws.message)

    def start(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        ws = self.ws
        if ws._pump():
            done = self.done
            done.__traceback__ = None  # raised again and again: keep no history
            raise done
        ws.link.wait_readable()


class Sender:
    """The awaitable of a send the socket did not take at once: it finishes
    the frame, queued broadcasts first, waiting for room as needed."""

    def __init__(self, ws):
        self.ws = ws
        self.done = StopIteration()

    def start(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        ws = self.ws
        if ws._continue_send():
            done = self.done
            done.__traceback__ = None
            raise done
        ws.link.wait_writable()


class Done:
    """An awaitable that is already done."""

    def __init__(self):
        self.done = StopIteration()

    def __iter__(self):
        return self

    def __next__(self):
        done = self.done
        done.__traceback__ = None
        raise done


class Yield(Done):
    """An awaitable that lets the other tasks run once, then is done."""

    def __init__(self):
        super().__init__()
        self.yielded = False

    def __next__(self):
        if not self.yielded:
            self.yielded = True
            yield_now()
            return None
        self.yielded = False
        return Done.__next__(self)


class Listener:
    """The server's listening socket and its accepting task."""

    def __init__(self, server, host, port, ssl):
        import socket  # here: the WebAssembly port has none, and runs the rest

        info = socket.getaddrinfo(host, port)[0]
        sock = socket.socket(info[0])
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[-1])
        sock.listen(8)
        self.sock = sock
        self.server = server
        self.ssl = ssl
        self.task = core.create_task(self._accept())
        self.port = port

    def _accept(self):
        import socket

        sock = self.sock
        while True:
            yield _io.queue_read(sock)
            client = None
            try:
                client, peer = sock.accept()
                if self.ssl is not None:
                    client = self.ssl.wrap_socket(client, server_side=True, do_handshake_on_connect=False)
                client.setblocking(False)
                _nodelay(client, socket)
                core.create_task(self.server._serve_client(Link(client, peer)))
            except MemoryError:
                # No heap for this client: tell it so, in bytes made in advance.
                if client is not None:
                    try:
                        client.write(BUSY)
                        client.close()
                    except Exception:
                        pass
            except OSError:
                if client is not None:
                    client.close()

    async def close(self):
        self.task.cancel()
        await core.sleep_ms(0)  # the accepting task leaves the I/O queue
        self.sock.close()


async def listen(server, host, port, ssl):
    return Listener(server, host, port, ssl)
