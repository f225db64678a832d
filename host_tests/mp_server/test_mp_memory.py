"""More connections than the heap holds, against the server under MicroPython
in a small fixed heap.

The rule: a client the server cannot take gets HTTP 503 before any 101, or
its TCP connection ends before any response. A client that got "101
Switching Protocols" is served: it echoes, and gets a proper closing
handshake. Never a 101 followed by a connection lost without a close frame.
On /zc, whose handler echoes in place (receive_message), that is all:
nothing is allocated per message. On /ws, whose handler copies each message
out (async for), a copy may find no heap; that client then gets a close
1011, the issue's rule for a MemoryError, and the others go on. The
clients that were served keep being served after the flood, and once they
have gone a fresh client is served.

The heap is 128 KB, the library loaded as .mpy (the interpreter, asyncio,
microws and serve.py take about 74 KB of it on the 64-bit unix port), and
messages are up to 1024 bytes. max_clients is the largest of CANDIDATES that
the server starts with in this heap: a server that reserves its clients'
memory at start() refuses more than fit (MemoryError), one that allocates
per connection starts with the first. Then CONNECTIONS_BEYOND more clients
than max_clients connect, so both the client limit and the heap's end are
met.
"""

import socket
import threading

import pytest
from mpclient import Closed, RawClient, accept_key, upgrade_head

HEAP = "128k"
MAX_SIZE = 1024
CANDIDATES = (32, 24, 16, 12, 8, 6, 4, 3, 2, 1)
CONNECTIONS_BEYOND = 16


def start_fullest(mp_server, mpy_lib):
    """(server, max_clients): the most clients this heap starts the server with."""
    refusals = []
    for max_clients in CANDIDATES:
        server = mp_server(heap=HEAP, lib=mpy_lib, max_size=MAX_SIZE, max_clients=max_clients, required=False)
        if server.started:
            return server, max_clients
        log = server.log(8)
        if "MemoryError" not in log:
            pytest.fail("the server did not start, and not for lack of heap:\n" + log, pytrace=False)
        refusals.append(log)
    pytest.fail("the server starts with no max_clients of %r in %s:\n%s" % (CANDIDATES, HEAP, refusals[-1]),
                pytrace=False)


def classify(client, key):
    """'101', '503' or 'closed' (no response at all); anything else is a problem."""
    try:
        status, headers = client.read_head()
    except Closed:
        if client.pending:
            return "part of a response, then closed: %r" % client.pending[:60]
        return "closed"
    except socket.timeout:
        return "no answer within %s s" % client.sock.gettimeout()
    except OSError as error:
        return "error: %r" % error
    if status == 101:
        if headers.get("sec-websocket-accept") != accept_key(key):
            return "101 with a wrong accept key"
        return "101"
    if status == 503:
        return "503"
    return "status %d" % status


def serve_each(held, copies):
    """Every held client echoes (a message of the largest size too); returns
    problems. copies: the handler copies messages out, so a close 1011 (no
    heap for the copy) is a proper answer; the client is then dropped from held."""
    problems = []
    for n, client in list(held):
        try:
            client.echo("client %d after the flood" % n)
            client.echo(bytes([n & 0xFF]) * MAX_SIZE)
        except (AssertionError, OSError, Closed) as error:
            if copies and "close b'\\x03\\xf3'" in str(error):  # 1011, and a close frame
                held.remove((n, client))
                client.close()
                continue
            problems.append("client %d got 101 but is not served: %r" % (n, error))
    return problems


def close_each(held):
    problems = []
    for n, client in held:
        try:
            client.close_handshake(1000)
        except (AssertionError, OSError, Closed) as error:
            problems.append("client %d got 101 but no proper close: %r" % (n, error))
        client.close()
    return problems


def report(max_clients, outcomes, problems, server):
    counts = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    shown = problems[:8] + (["... %d more" % (len(problems) - 8)] if len(problems) > 8 else [])
    return ("max_clients %d, %d clients: outcomes %r\n%d problems:\n  %s\n%s"
            % (max_clients, len(outcomes), counts, len(problems), "\n  ".join(shown), server.log(20)))


def check_flood(server, max_clients, answered, copies):
    """answered: [(client, outcome)] in the order the clients connected."""
    outcomes = [outcome for _, outcome in answered]
    held = []
    problems = []
    for n, (client, outcome) in enumerate(answered):
        if outcome == "101":
            held.append((n, client))
        else:
            client.close()
            if outcome not in ("503", "closed"):
                problems.append("client %d: %s" % (n, outcome))
    server.assert_alive()
    problems += serve_each(held, copies)
    problems += serve_each(held, copies)  # and again: the served stay served
    problems += close_each(held)
    summary = report(max_clients, outcomes, problems, server)
    assert not problems, summary
    assert held, "not one client was served: " + summary
    assert len(held) <= max_clients, "more clients than max_clients got 101: " + summary
    assert len(held) < len(outcomes), "every client fit; the test needs more: " + summary
    print(summary.splitlines()[0])
    server.assert_serving()  # with the held clients gone, a fresh one is served


def connect(server, path):
    client = RawClient.open(server.port, timeout=3)
    client.sock.settimeout(10)
    head, key = upgrade_head(path)
    return client, head, key


ROUTES = [("/zc", False), ("/ws", True)]  # (path, its handler copies messages out)


@pytest.mark.parametrize("path,copies", ROUTES)
def test_connections_one_after_another_beyond_the_heap(mp_server, mpy_lib, path, copies):
    server, max_clients = start_fullest(mp_server, mpy_lib)
    answered = []
    try:
        for _ in range(max_clients + CONNECTIONS_BEYOND):
            client, head, key = connect(server, path)
            client.sendall(head)
            answered.append((client, classify(client, key)))  # its answer before the next client
        check_flood(server, max_clients, answered, copies)
    finally:
        for client, _ in answered:
            client.close()


@pytest.mark.parametrize("path,copies", ROUTES)
def test_a_burst_of_connections_beyond_the_heap(mp_server, mpy_lib, path, copies):
    """All connect first, then all send their request heads at once."""
    server, max_clients = start_fullest(mp_server, mpy_lib)
    opened = []
    refused = []
    try:
        for n in range(max_clients + CONNECTIONS_BEYOND):
            try:
                opened.append(connect(server, path))
            except OSError as error:  # not accepted: SYN dropped, refused...
                refused.append("client %d could not connect: %r" % (n, error))
                break
        assert not refused, ("%d connections made the server stop accepting (max_clients %d):\n  %s\n%s"
                             % (len(opened) + 1, max_clients, "\n  ".join(refused), server.log()))
        threads = [threading.Thread(target=client.sendall, args=(head,)) for client, head, _ in opened]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        check_flood(server, max_clients, [(client, classify(client, key)) for client, _, key in opened], copies)
    finally:
        for client, _, _ in opened:
            client.close()
