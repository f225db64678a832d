"""A configuration that starts serves all its clients (issue 21, point 5).

start() raises MemoryError unless the heap holds, beside the client slots,
what max_clients + 1 connections need (the open ones, and one more whose
request head is being read): its check stands for every client the server
will be asked to serve. Here, under the real MicroPython unix port in a
fixed heap, with the library as .mpy: for each heap, the largest max_clients
that tools/echo_server.py starts with is found (bisection, as
test_mp_start_heap.py does); then that many clients connect, one after
another, with the headers a browser sends (about 480 bytes). Each gets its
101 and the echo of a 1 KiB message and stays open; the next client gets
503 (too many clients) before any 101; then every client is served once
more and closes properly.

Before the fix, start()'s stand-in for a connection was 240 words (1,920
bytes here): in 256 KB the server started with 37 clients and 36 were
served, in 512 KB with 86 and 72 were; the others got 503 "out of heap".

Clients that all send their request heads at the same moment need more
(each holds its head and its head_timeout's task at once, about 4.5 KB each
here): the ones the heap does not hold get 503 "out of heap" and come back
later. That is the README's rule for a heap that runs out while a
connection is set up, not tested here.
"""

import os
import socket
import subprocess

import pytest
from mpclient import Closed, RawClient, accept_key, upgrade_head

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ECHO = os.path.join(ROOT, "tools", "echo_server.py")
HEAPS = ("128k", "256k", "512k")
MAX_SIZE = 1024
MOST = 128  # the bisection's upper bound: no heap here holds this many
MESSAGE = bytes(range(256)) * (MAX_SIZE // 256)  # 1 KiB, the largest message
BROWSER = (  # what Chrome sends beside the upgrade's own headers (Host is 127.0.0.1)
    ("Origin", "http://127.0.0.1"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/126.0.0.0 Safari/537.36"),
    ("Pragma", "no-cache"),
    ("Cache-Control", "no-cache"),
    ("Accept-Encoding", "gzip, deflate, br, zstd"),
    ("Accept-Language", "en-US,en;q=0.9"),
    ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
)


def echo_server(mp_server, mpy_lib, heap, max_clients):
    """tools/echo_server.py listening, or (it refused for lack of heap) None."""
    server = mp_server(heap=heap, lib=mpy_lib, script=ECHO, ready="echo server on", required=False,
                       max_size=MAX_SIZE, max_clients=max_clients)
    if server.started:
        return server
    log = server.log(12)
    if "MemoryError" not in log or "no heap for %d clients" % max_clients not in log:
        pytest.fail("the echo server neither started nor refused for heap:\n" + log, pytrace=False)
    return None


def most_that_start(mp_server, mpy_lib, heap):
    best, failed = 0, MOST + 1
    while failed - best > 1:
        middle = (best + failed) // 2
        server = echo_server(mp_server, mpy_lib, heap, middle)
        if server is not None:
            server.stop()
            best = middle
        else:
            failed = middle
    return best


def answer(client, key):
    """'101' (with the right accept key), '503 <body>', or what went wrong."""
    try:
        status, headers = client.read_head()
    except Closed:
        return "closed before any response"
    except socket.timeout:
        return "no answer"
    except OSError as error:
        return "error %r" % error
    if status == 101:
        return "101" if headers.get("sec-websocket-accept") == accept_key(key) else "101, wrong accept key"
    if status != 503:
        return "status %d" % status
    body = client.pending
    try:
        while True:  # the server closes after a 503: read it all
            chunk = client.sock.recv(4096)
            if not chunk:
                break
            body += chunk
    except OSError:
        pass
    return "503 " + body.decode("latin-1").strip()


def upgrade(port):
    """A client that asked for a WebSocket as a browser does; (client, its answer)."""
    client = RawClient.open(port, timeout=10)
    try:
        head, key = upgrade_head("/", BROWSER)
        client.sendall(head)
        return client, answer(client, key)
    except BaseException:
        client.close()
        raise


@pytest.mark.parametrize("heap", HEAPS)
def test_the_clients_a_server_starts_with_are_all_served(mp_server, mpy_lib, heap):
    max_clients = most_that_start(mp_server, mpy_lib, heap)
    assert 1 <= max_clients < MOST, "the heap should take some clients, not all: %d" % max_clients
    server = echo_server(mp_server, mpy_lib, heap, max_clients)
    assert server is not None, "started with %d clients once, then refused" % max_clients
    held = []
    try:
        for n in range(1, max_clients + 1):
            client, got = upgrade(server.port)
            held.append(client)
            try:
                assert got == "101", "got %r" % got
                client.echo(MESSAGE)
            except (AssertionError, OSError, Closed) as error:
                raise AssertionError("%s: the server started with max_clients %d; client %d is not served: %s\n%s"
                                     % (heap, max_clients, n, error, server.log())) from error
        late, got = upgrade(server.port)
        late.close()
        assert got.startswith("503 ") and "too many clients" in got, (
            "%s: the client after %d got %r\n%s" % (heap, max_clients, got, server.log()))
        for n, client in enumerate(held, 1):
            try:
                client.echo(MESSAGE)
                client.close_handshake(1000)
            except (AssertionError, OSError, Closed) as error:
                raise AssertionError("%s: client %d of %d, served before, is not served after the 503: %s\n%s"
                                     % (heap, n, max_clients, error, server.log())) from error
        fresh, got = upgrade(server.port)  # their slots are free again
        try:
            assert got == "101", "%s: a fresh client after the others closed got %r\n%s" % (heap, got, server.log())
            fresh.echo(MESSAGE)
            fresh.close_handshake(1000)
        finally:
            fresh.close()
    finally:
        for client in held:
            client.close()
    print("%s: max_clients %d started, all served, the next got 503" % (heap, max_clients))


APP_STATE = """
import sys
import asyncio
from microws.server import Server


async def main(max_clients, client_bytes):
    server = Server(max_clients=max_clients, max_message_size=1024, ping_interval=0)
    server.client_bytes = client_bytes
    try:
        await server.start("127.0.0.1", 0)
    except MemoryError:
        print("refused")
        return
    print("started")
    await server.stop()


asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""


def test_the_app_adds_its_per_client_state_to_the_check(micropython, mpy_lib, tmp_path):
    """server.client_bytes, set before start(): what the application holds per
    client is found beside each connection's working memory, or start() refuses."""
    script = tmp_path / "app_state.py"
    script.write_text(APP_STATE)
    env = dict(os.environ, MICROPYPATH=".frozen:" + mpy_lib)

    def starts(max_clients, client_bytes):
        done = subprocess.run([micropython, "-X", "heapsize=256k", str(script), str(max_clients), str(client_bytes)],
                              capture_output=True, text=True, timeout=30, env=env)
        last = (done.stdout.strip().splitlines() or [""])[-1]
        assert last in ("started", "refused"), done.stdout + done.stderr
        return last == "started"

    def most(client_bytes):
        best, failed = 0, MOST + 1
        while failed - best > 1:
            middle = (best + failed) // 2
            if starts(middle, client_bytes):
                best = middle
            else:
                failed = middle
        return best

    alone = most(0)
    with_state = most(4096)
    assert 1 <= with_state < alone, (
        "in 256 KB, %d clients start alone and %d with 4 KB of the app's state each" % (alone, with_state))
    print("256k: max_clients %d, and %d with client_bytes 4096" % (alone, with_state))
