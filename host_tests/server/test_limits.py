"""Limits and misbehaving clients: nothing grows, everyone else is served."""

import asyncio
import socket
import time
import tracemalloc

import websockets
from rawclient import RawClient, http_request, split_response, upgrade_head
from serverutil import run, running
from websockets.exceptions import ConnectionClosed, InvalidStatus

from microws.frames import OP_CLOSE, OP_TEXT, close_payload
from microws.server import Server


def quiet(**options):
    options.setdefault("log", lambda *a: None)
    return Server(**options)


def echo_server(**options):
    server = quiet(**options)

    @server.websocket("/ws")
    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    return server


def url(port):
    return "ws://127.0.0.1:%d/ws" % port


def test_client_beyond_limit_gets_503_and_others_are_undisturbed():
    async def body():
        async with running(echo_server(max_clients=2)) as port:
            first = await websockets.connect(url(port))
            second = await websockets.connect(url(port))
            try:
                await websockets.connect(url(port))
                raise AssertionError("third client accepted")
            except InvalidStatus as error:
                assert error.response.status_code == 503
            for client in (first, second):
                await client.send("still fine")
                assert await client.recv() == "still fine"
            await first.close()
            await asyncio.sleep(0.1)
            third = await websockets.connect(url(port))  # a slot came free
            await third.close()
            await second.close()
    run(body())


def test_request_head_over_limit_gets_431():
    async def body():
        async with running(echo_server(max_head_size=512)) as port:
            head, _ = upgrade_head(extra=(("X-Padding", "p" * 600),))
            assert split_response(await http_request(port, head))[0] == 431
    run(body())


def test_one_endless_line_gets_431_without_being_buffered():
    async def body():
        async with running(echo_server(max_head_size=512)) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /" + b"a" * 200_000)  # no line end, ever
            answer = await asyncio.wait_for(reader.read(4096), 5)
            assert answer.startswith(b"HTTP/1.1 431"), answer[:40]
            writer.close()
    run(body())


def test_slowloris_head_is_dropped_by_timeout():
    async def body():
        async with running(echo_server(head_timeout=1)) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            head, _ = upgrade_head()
            start = time.monotonic()
            answer = b""
            for byte in head:
                try:
                    writer.write(bytes([byte]))
                    await writer.drain()
                except ConnectionError:
                    break
                chunk = b""
                try:
                    chunk = await asyncio.wait_for(reader.read(100), 0.2)
                except asyncio.TimeoutError:
                    continue
                answer += chunk
                if not chunk or answer:
                    break
            elapsed = time.monotonic() - start
            writer.close()
            assert answer.startswith(b"HTTP/1.1 408"), answer
            assert elapsed < 2.5
    run(body())


def test_protocol_error_closes_with_1002_then_drops_tcp():
    async def body():
        async with running(echo_server()) as port:
            client = await RawClient.connect(port)
            client.writer.write(b"\x81\x05hello")  # unmasked
            assert await client.read_close() == 1002
            await client.send(OP_CLOSE, close_payload(1002))
            assert await client.at_eof(timeout=2)
    run(body())


def test_frame_announcing_2_to_63_bytes_closes_with_1009():
    async def body():
        async with running(echo_server()) as port:
            client = await RawClient.connect(port)
            client.writer.write(b"\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04")
            assert await client.read_close() == 1009
            assert await client.at_eof(timeout=4)
    run(body())


def test_peer_gone_without_close_frees_its_slot():
    async def body():
        server = echo_server(max_clients=1)
        async with running(server) as port:
            client = await RawClient.connect(port)
            client.writer.transport.abort()
            for _ in range(50):
                if not server.clients:
                    break
                await asyncio.sleep(0.02)
            assert server.clients == []
            async with websockets.connect(url(port)) as again:
                await again.send("x")
                assert await again.recv() == "x"
    run(body())


def test_client_that_never_answers_pings_is_dropped():
    async def body():
        server = echo_server(ping_interval=0.5, ping_timeout=0.5)
        async with running(server) as port:
            silent = await RawClient.connect(port)  # reads nothing, answers nothing
            async with websockets.connect(url(port)) as polite:  # answers pings
                for _ in range(40):
                    if len(server.clients) == 1:
                        break
                    await asyncio.sleep(0.1)
                assert len(server.clients) == 1
                await polite.send("alive")
                assert await polite.recv() == "alive"
            opcode, payload = await silent.read_frame()
            assert opcode == 9  # it was pinged
            assert await silent.at_eof(timeout=3)
    run(body())


def test_idle_client_closed_with_1001():
    async def body():
        async with running(echo_server(idle_timeout=0.5, ping_interval=0)) as port:
            async with websockets.connect(url(port), ping_interval=None) as client:
                try:
                    await asyncio.wait_for(client.recv(), 5)
                except ConnectionClosed:
                    pass
                assert client.close_code == 1001
    run(body())


async def slow_client(port):
    """Upgrade a socket with a tiny receive window that never reads again.

    The socket is non-blocking and driven by the loop: a blocking recv
    here would stall the server under test, which shares the loop.
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    head, _ = upgrade_head()
    await loop.sock_sendall(sock, head)
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 1), 5)
        assert chunk, "server closed during the handshake"
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return sock


def test_broadcast_slow_client_drops_oldest_then_is_closed_fast_clients_get_all():
    async def body():
        server = quiet(queue_size=4, send_timeout=1, ping_interval=0)

        @server.websocket("/ws")
        async def stream(ws):
            async for _ in ws:
                pass

        group_sizes = []
        async with running(server) as port:
            sock = await slow_client(port)  # never reads after the 101
            fast = [await websockets.connect(url(port), max_size=None) for _ in range(3)]
            received = [[] for _ in fast]

            async def read_all(i, client):
                async for message in client:
                    received[i].append(message)
                    if len(received[i]) == 400:
                        return

            readers = [asyncio.create_task(read_all(i, c)) for i, c in enumerate(fast)]
            group = server.group("/ws")
            slow_ws = None
            max_pending = 0
            for n in range(400):
                group.broadcast(("%05d" % n) + "x" * 8000)
                group_sizes.append(len(group))
                for ws in group:
                    if ws.remote_address[1] == sock.getsockname()[1]:
                        slow_ws = ws
                if slow_ws is not None and not slow_ws.closed:
                    assert slow_ws._q_count <= 4
                    link = slow_ws.link
                    if link is not None and not link.transport.is_closing():
                        max_pending = max(max_pending, link.transport.get_write_buffer_size() + link._size)
                await asyncio.sleep(0.005)
            await asyncio.wait_for(asyncio.gather(*readers), 20)
            for messages in received:
                assert [m[:5] for m in messages] == ["%05d" % n for n in range(400)]
            assert slow_ws is not None
            assert slow_ws.dropped > 0
            for _ in range(40):
                if slow_ws.closed:
                    break
                await asyncio.sleep(0.1)
            assert slow_ws.closed
            assert slow_ws.close_code == 1008
            # bounded: the transport's high-water mark plus one frame, never the stream
            assert max_pending <= 64 * 1024 + 8200
            for client in fast:
                await client.close()
            sock.close()
    run(body())


def test_fifty_clients_exchange_messages_beside_a_client_that_never_reads():
    async def body():
        server = quiet(max_clients=60, queue_size=8, send_timeout=2, ping_interval=0)

        @server.websocket("/ws")
        async def handler(ws):
            async for message in ws:
                await ws.send(message)
                server.group("/ws").broadcast("tick")

        tracemalloc.start()
        async with running(server) as port:
            sock = await slow_client(port)
            clients = [await websockets.connect(url(port)) for _ in range(50)]
            baseline = None

            async def chat(i, client):
                echoes = 0
                for n in range(40):
                    await client.send("client %d message %d" % (i, n))
                    while True:
                        message = await client.recv()
                        if message != "tick":
                            assert message == "client %d message %d" % (i, n)
                            echoes += 1
                            break
                return echoes

            for round_number in range(3):
                results = await asyncio.gather(*(chat(i, c) for i, c in enumerate(clients)))
                assert results == [40] * 50
                current, _ = tracemalloc.get_traced_memory()
                if round_number == 0:
                    baseline = current
            growth = current - baseline
            tracemalloc.stop()
            # 2000 more messages each round did not grow memory: the slow
            # client's backlog is bounded by its queue and transport buffer.
            assert growth < 1_500_000, growth
            for client in clients:
                await client.close()
            sock.close()
    run(body(), timeout=120)


def test_messages_sent_byte_by_byte_arrive_whole():
    async def body():
        async with running(echo_server()) as port:
            client = await RawClient.connect(port)
            from microws.sansio import encode_frame
            frame = encode_frame(OP_TEXT, "slow \u00e9\U0001f600".encode(), mask=b"\x01\x02\x03\x04")
            for byte in frame:
                client.writer.write(bytes([byte]))
                await client.writer.drain()
                await asyncio.sleep(0.001)
            opcode, payload = await client.read_frame()
            assert (opcode, payload.decode()) == (OP_TEXT, "slow \u00e9\U0001f600")
            client.close()
    run(body())


def test_a_handler_that_only_sends_keeps_its_client_through_keepalive_and_sees_its_close():
    """Its connection is read by the housekeeping task: the client's pongs
    keep it alive past ping_timeout, and the client's close ends it."""
    async def body():
        server = quiet(ping_interval=0.3, ping_timeout=0.3)
        ended = asyncio.Event()

        @server.websocket("/ws")
        async def ticker(ws):
            try:
                while True:
                    await ws.send("tick")
                    await asyncio.sleep(0.05)
            finally:
                ended.set()

        async with running(server) as port:
            async with websockets.connect(url(port)) as client:
                started = time.monotonic()
                while time.monotonic() - started < 2.5:  # several ping intervals and timeouts
                    assert await asyncio.wait_for(client.recv(), 2) == "tick"
            await asyncio.wait_for(ended.wait(), 3)
            assert client.close_code == 1000
    run(body())


def test_a_message_held_in_place_is_not_read_over_while_the_handler_is_away():
    """receive_message() lends the connection's buffer until the next receive:
    the housekeeping task, which reads for handlers away from receive, must
    not read the next message over it."""
    async def body():
        server = quiet(ping_interval=0)

        @server.websocket("/ws")
        async def slow_echo(ws):
            while True:
                message = await ws.receive_message()
                await asyncio.sleep(1.2)  # more than a housekeeping pass
                await ws.send(message)

        async with running(server) as port:
            async with websockets.connect(url(port)) as client:
                await client.send("first message")
                await client.send("second, longer message")
                assert await asyncio.wait_for(client.recv(), 5) == "first message"
                assert await asyncio.wait_for(client.recv(), 5) == "second, longer message"
    run(body())
