"""The server's I/O on MicroPython: its sockets, driven without allocating.

Why not asyncio's streams, as on CPython: every awaited read there creates a
generator, every wait in asyncio's I/O queue allocates an entry and a poll
registration, a write the socket does not take grows `out_buf` without
bound, and the accepting task dies on the first MemoryError. Here:

- the server accepts connections itself, and a MemoryError while taking
  one on answers it with a 503 made in advance;
- asyncio's I/O queue is replaced (PinningIOQueue, same interface) by one
  in which a WebSocket's socket stays registered between waits, so waiting
  on it allocates nothing;
- the waits are awaitable objects made once per client slot, which end with
  a StopIteration made once too.

This relies on asyncio's core keeping its I/O queue in core._io_queue and
calling its wait_io_event(), map and remove(); that holds from MicroPython
1.13 to 1.29.
"""

import select

import asyncio

from .compat import viper_copy

core = getattr(asyncio, "core", None)  # None: a port whose asyncio has no core (no sockets either)

try:
    from errno import EAGAIN
except ImportError:
    EAGAIN = 11

BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 12\r\nConnection: close\r\nRetry-After: 5\r\n\r\nout of heap\n"
LINE_PIECE = 128  # request head lines are read this much at a time
WRITES_KEEP_COPIES = False  # a write goes to the socket at once: nothing to keep
SENDS_BEFORE_YIELD = 16  # a handler that only sends lets other tasks run this often

_EVENTS = (select.POLLIN, getattr(select, "POLLPRI", 2), select.POLLOUT)
_FAILED = getattr(select, "POLLERR", 8) | getattr(select, "POLLHUP", 16)


class PinningIOQueue:
    """asyncio's I/O queue, with pinned sockets: a pinned socket stays
    registered in the poller while no task waits on it, so the next wait
    only changes its event mask. Entries: [reader, pri, writer, socket, pinned]."""

    def __init__(self):
        self.poller = select.poll()
        self.map = {}

    def _mask(self, entry):
        mask = 0
        for i in range(3):
            if entry[i] is not None:
                mask |= _EVENTS[i]
        return mask

    def _register(self, sock, events):
        # poll.register() that runs out of heap halfway leaves a broken entry
        # behind, and the next poll crashes the interpreter (a known
        # MicroPython limit, extmod/modselect.c): take the heap it needs
        # first, so that a MemoryError comes here, cleanly.
        bytearray(96 + 8 * len(self.map))
        self.poller.register(sock, events)

    def _enqueue(self, sock, slot):
        entry = self.map.get(id(sock))
        task = core.cur_task
        if entry is None:
            self._register(sock, _EVENTS[slot])
            entry = [None, None, None, sock, False]
            entry[slot] = task
            self.map[id(sock)] = entry
        else:
            if entry[slot] is not None:
                raise RuntimeError("two tasks wait on one socket")
            entry[slot] = task
            self.poller.modify(sock, self._mask(entry))
        task.data = self  # so that cancelling the task takes it out of here

    def queue_read(self, sock):
        self._enqueue(sock, 0)

    def queue_pri(self, sock):
        self._enqueue(sock, 1)

    def queue_write(self, sock):
        self._enqueue(sock, 2)

    def _dequeue(self, sock):
        del self.map[id(sock)]
        self.poller.unregister(sock)

    def pin(self, sock):
        entry = self.map.get(id(sock))
        if entry is None:
            self._register(sock, 0)
            try:
                self.map[id(sock)] = [None, None, None, sock, True]
            except MemoryError:
                self.poller.unregister(sock)
                raise
        else:
            entry[4] = True

    def unpin(self, sock, wake=False):
        """Forget the socket (about to close); wake: its waiting tasks run,
        to find it closed."""
        entry = self.map.get(id(sock))
        if entry is None:
            return
        entry[4] = False
        if wake:
            for i in range(3):
                if entry[i] is not None:
                    core._task_queue.push(entry[i])
                    entry[i] = None
        if entry[0] is None and entry[1] is None and entry[2] is None:
            self._dequeue(sock)

    def remove(self, task):
        for key in self.map:  # iterating allocates nothing
            entry = self.map[key]
            for i in range(3):
                if entry[i] is task:
                    entry[i] = None
                    self._settle(entry, 0)
                    return

    def _settle(self, entry, events):
        sock = entry[3]
        if entry[0] is None and entry[1] is None and entry[2] is None:
            if entry[4] and not events & _FAILED:
                self.poller.modify(sock, 0)  # pinned: stays, waits for nothing
            else:
                self._dequeue(sock)  # an error nobody waits for would spin the poller
        else:
            self.poller.modify(sock, self._mask(entry))

    def wait_io_event(self, dt):
        for sock, events in self.poller.ipoll(dt):
            entry = self.map[id(sock)]
            if events & ~select.POLLOUT and entry[0] is not None:
                core._task_queue.push(entry[0])
                entry[0] = None
            if events & _EVENTS[1] and entry[1] is not None:
                core._task_queue.push(entry[1])
                entry[1] = None
            if events & ~select.POLLIN and entry[2] is not None:
                core._task_queue.push(entry[2])
                entry[2] = None
            self._settle(entry, events)


def _io():
    """The I/O queue, ours once the server has started."""
    queue = core._io_queue
    if type(queue) is not PinningIOQueue and not queue.map:
        queue = core._io_queue = PinningIOQueue()
    return queue


# Joining a small frame's header and payload: a copy loop in viper (no
# allocation); ports without a native emitter write the two parts instead.
_JOINED = bytearray(266)
_copy = viper_copy


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

    def __init__(self, sock, peer, listener=None):
        self.sock = sock
        self.peer = peer
        self.listener = listener  # counts the connections it let in
        self.view = None  # the slot's buffer, as views at 0 and 2 (set by attach)
        self.view2 = None
        self.buffer = None

    # ----------------------------------------------- request head, plain HTTP

    def read_line(self, limit):
        """One line of at most `limit` bytes (a generator used as coroutine).
        Read in pieces of at most LINE_PIECE: the socket's readline(n)
        reserves all n bytes at once."""
        line = b""
        sock = self.sock
        while True:
            yield core._io_queue.queue_read(sock)
            while True:
                part = sock.readline(min(LINE_PIECE, limit - len(line)))
                if part is None:
                    break
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
                yield core._io_queue.queue_write(self.sock)
            else:
                done += n

    # ----------------------------------------------------------- WebSocket

    def attach(self, conn):
        """The connection's buffer becomes this link's (its socket was pinned
        when it was accepted)."""
        self.buffer = conn.buffer
        self.view = conn.view
        self.view2 = conn.view2

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

    def write_frame(self, header, header_size, payload, size):
        """A frame's header and payload, in one write when it is small and
        viper can join them: one TCP segment, one system call. Returns the
        bytes the socket took (0 if none)."""
        if _copy is not None and header_size + size <= len(_JOINED):
            _copy(_JOINED, 0, header, header_size)
            _copy(_JOINED, header_size, payload, size)
            return self.write_now(_JOINED, 0, header_size + size)
        n = self.write_now(header, 0, header_size)
        if n < header_size:
            return n
        return n + self.write_now(payload, 0, size)

    def read_soon(self):
        pass  # read_now() reads the socket itself

    def has_room(self, size):
        return True  # the socket says how much it takes

    def must_drain(self):
        return False  # nothing is kept here that the socket did not take

    def wait_readable(self):
        core._io_queue.queue_read(self.sock)

    def wait_writable(self):
        core._io_queue.queue_write(self.sock)

    def refuse(self):
        """Out of heap before any 101: answer 503 and close."""
        if self.sock is not None:
            self.close_waits()
            refuse(self.sock)
            self.sock = None
            if self.listener is not None:
                self.listener.live -= 1
                self.listener = None

    def close_waits(self):
        queue = core._io_queue
        if type(queue) is PinningIOQueue:
            queue.unpin(self.sock, True)
        elif id(self.sock) in queue.map:
            queue._dequeue(self.sock)  # asyncio's own: its waiter is not woken

    def close(self):
        """Close the socket; a task waiting on it is woken, to find it closed
        (a closed socket left in the poller would never wake it)."""
        sock = self.sock
        if sock is None:
            return
        self.close_waits()
        self.sock = None
        if self.listener is not None:
            self.listener.live -= 1
            self.listener = None
        discard_input(sock)  # closed with input unread, the connection would be reset
        try:
            sock.close()
        except OSError:
            pass


def yield_now():
    """Let the other ready tasks run once (from an awaitable's __next__)."""
    core._task_queue.push(core.cur_task)


class _Wait:
    """An awaitable made once per client slot and reused: each __next__
    takes a step (step() true: done, ending with the StopIteration made
    once), or queues the task on the socket and yields to asyncio."""

    def __init__(self, ws, value=None):
        self.ws = ws
        self.done = StopIteration(value)

    def start(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        if self.step():
            done = self.done
            done.__traceback__ = None  # raised again and again: keep no history
            raise done
        self.wait()


class Receiver(_Wait):
    """ws.receive_message(): reads what has arrived, ends with the slot's message."""

    def __init__(self, ws):
        super().__init__(ws, ws.message)

    def step(self):
        return self.ws._pump()

    def wait(self):
        self.ws.link.wait_readable()


class Sender(_Wait):
    """A send the socket did not take at once: finishes the frame (queued
    broadcasts first), waiting for room as needed."""

    def step(self):
        return self.ws._continue_send()

    def wait(self):
        self.ws.link.wait_writable()


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


_DISCARD = bytearray(64)


def discard_input(sock):
    """Read what has arrived and drop it (a socket closed with input unread
    resets the connection, and the peer can lose what we sent last)."""
    try:
        for _ in range(64):
            if not sock.readinto(_DISCARD):
                break
    except Exception:
        pass


def refuse(sock):
    """Answer 503 in bytes made in advance, drop what the client sent, close."""
    try:
        sock.setblocking(False)  # an accepted socket blocks until told otherwise
        sock.write(BUSY)
    except Exception:
        pass
    discard_input(sock)
    try:
        sock.close()
    except Exception:
        pass


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
        # Connections at once: every client slot, and one more (a page
        # load, or a client about to hear it is one too many). start()
        # checked that the heap holds that many; beyond, a 503 made in
        # advance answers at once, before the heap runs out halfway.
        self.live = 0
        self.limit = server.max_clients + 1

    def _accept(self):
        import socket

        sock = self.sock
        queue = _io()
        if type(queue) is PinningIOQueue:
            queue.pin(sock)
        while True:
            try:
                yield core._io_queue.queue_read(sock)
            except MemoryError:  # asyncio's own queue, out of heap: try again soon
                yield from core.sleep_ms(20)
                continue
            client = link = None
            try:
                client, peer = sock.accept()
                if self.live >= self.limit:
                    refuse(client)
                    continue
                if self.ssl is not None:
                    client = self.ssl.wrap_socket(client, server_side=True, do_handshake_on_connect=False)
                client.setblocking(False)
                _nodelay(client, socket)
                link = Link(client, peer, self)
                self.live += 1
                if type(queue) is PinningIOQueue:
                    queue.pin(client)  # registered once, for the connection's life
                core.create_task(self.server._serve_client(link))
            except MemoryError:
                # No heap for this client: tell it so, in bytes made in
                # advance, and go on accepting.
                if link is not None:
                    link.refuse()
                elif client is not None:
                    refuse(client)
            except Exception:  # a failed accept or TLS setup ends that client only
                if client is not None:
                    try:
                        client.close()
                    except Exception:
                        pass

    async def close(self):
        self.task.cancel()
        await core.sleep_ms(0)  # the accepting task leaves the I/O queue
        queue = core._io_queue
        if type(queue) is PinningIOQueue:
            queue.unpin(self.sock)
        self.sock.close()


async def listen(server, host, port, ssl):
    return Listener(server, host, port, ssl)
