"""The server against an independent client: the `websockets` package."""

import asyncio

import pytest
import websockets
from serverutil import run, running
from websockets.exceptions import ConnectionClosed, InvalidStatus

from microws.server import Server


def echo_server(**options):
    server = Server(**options)

    @server.websocket("/ws")
    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    return server


def url(port, path="/ws"):
    return "ws://127.0.0.1:%d%s" % (port, path)


def test_client_exchanges_text_and_binary():
    async def body():
        async with running(echo_server()) as port:
            async with websockets.connect(url(port)) as client:
                await client.send("h\u00e9llo \U0001f600")
                assert await client.recv() == "h\u00e9llo \U0001f600"
                await client.send(b"\x00\xff\x10")
                assert await client.recv() == b"\x00\xff\x10"
    run(body())


def test_client_sends_fragmented_message():
    async def body():
        async with running(echo_server()) as port:
            async with websockets.connect(url(port)) as client:
                await client.send(["frag", "men", "ted \u00e9"])
                assert await client.recv() == "fragmented \u00e9"
                await client.send([b"\x01", b"\x02\x03"])
                assert await client.recv() == b"\x01\x02\x03"
    run(body())


def test_server_sends_fragmented_message():
    async def body():
        server = Server()

        @server.websocket("/ws")
        async def fragments(ws):
            await ws.send_fragments(["one ", "two ", "three"])
            await ws.send_fragments([b"\x01", b"\x02"])

        async with running(server) as port:
            async with websockets.connect(url(port)) as client:
                assert await client.recv() == "one two three"
                assert await client.recv() == b"\x01\x02"
    run(body())


def test_one_mebibyte_message_with_raised_limit():
    async def body():
        payload = bytes(range(256)) * 4096
        async with running(echo_server(max_message_size=1 << 20)) as port:
            async with websockets.connect(url(port), max_size=None) as client:
                await client.send(payload)
                assert await client.recv() == payload
                text = "\u00e9" * (1 << 19)  # 1 MiB of two-byte characters
                await client.send(text)
                assert await client.recv() == text
    run(body())


def test_message_over_limit_closes_with_1009():
    async def body():
        async with running(echo_server(max_message_size=1024)) as port:
            async with websockets.connect(url(port)) as client:
                await client.send(bytes(1025))
                with pytest.raises(ConnectionClosed):
                    await client.recv()
                assert client.close_code == 1009
    run(body())


def test_client_ping_gets_pong():
    async def body():
        async with running(echo_server()) as port:
            async with websockets.connect(url(port)) as client:
                pong = await client.ping(b"are you there")
                await asyncio.wait_for(pong, 5)
    run(body())


def test_client_close_code_and_reason_reach_handler_and_are_echoed():
    async def body():
        seen = []
        server = Server()

        @server.websocket("/ws")
        async def handler(ws):
            async for _ in ws:
                pass
            seen.append(ws.close_code)

        async with running(server) as port:
            client = await websockets.connect(url(port))
            await client.close(4000, "done here")
            assert client.close_code == 4000
            await asyncio.sleep(0.2)
        assert seen == [4000]
    run(body())


def test_server_close_code_and_reason_reach_client():
    async def body():
        server = Server()

        @server.websocket("/ws")
        async def handler(ws):
            await ws.close(4321, "bye now")

        async with running(server) as port:
            async with websockets.connect(url(port)) as client:
                with pytest.raises(ConnectionClosed):
                    await client.recv()
                assert client.close_code == 4321
                assert client.close_reason == "bye now"
    run(body())


def test_handler_that_returns_closes_with_1000():
    async def body():
        server = Server()

        @server.websocket("/ws")
        async def handler(ws):
            await ws.send("only this")

        async with running(server) as port:
            async with websockets.connect(url(port)) as client:
                assert await client.recv() == "only this"
                with pytest.raises(ConnectionClosed):
                    await client.recv()
                assert client.close_code == 1000
    run(body())


def test_handler_that_raises_closes_with_1011_and_server_goes_on():
    async def body():
        server = Server(log=lambda *a: None)

        @server.websocket("/ws")
        async def handler(ws):
            message = await ws.receive()
            if message == "boom":
                raise RuntimeError("application bug")
            await ws.send(message)

        async with running(server) as port:
            async with websockets.connect(url(port)) as client:
                await client.send("boom")
                with pytest.raises(ConnectionClosed):
                    await client.recv()
                assert client.close_code == 1011
            async with websockets.connect(url(port)) as client:
                await client.send("still here")
                assert await client.recv() == "still here"
    run(body())


def test_subprotocol_chosen_from_client_offer():
    async def body():
        server = Server()

        @server.websocket("/ws", subprotocols=["sensors.v2", "sensors.v1"])
        async def handler(ws):
            await ws.send(ws.subprotocol or "none")

        async with running(server) as port:
            async with websockets.connect(url(port), subprotocols=["chat", "sensors.v1"]) as client:
                assert client.subprotocol == "sensors.v1"
                assert await client.recv() == "sensors.v1"
            async with websockets.connect(url(port), subprotocols=["chat"]) as client:
                assert client.subprotocol is None
                assert await client.recv() == "none"
    run(body())


def test_origin_outside_allow_list_gets_403():
    async def body():
        server = echo_server(origins=["http://device.local"])
        async with running(server) as port:
            with pytest.raises(InvalidStatus) as error:
                await websockets.connect(url(port), origin="http://evil.example")
            assert error.value.response.status_code == 403
            async with websockets.connect(url(port), origin="http://device.local") as client:
                await client.send("ok")
                assert await client.recv() == "ok"
    run(body())


def test_without_origins_only_the_servers_own_host_or_no_origin_gets_in():
    async def body():
        async with running(echo_server()) as port:
            with pytest.raises(InvalidStatus) as error:
                await websockets.connect(url(port), origin="http://evil.example")
            assert error.value.response.status_code == 403
            with pytest.raises(InvalidStatus) as error:
                await websockets.connect(url(port), origin="http://127.0.0.1:%d" % (port + 1))
            assert error.value.response.status_code == 403
            # a page the server served itself (Host 127.0.0.1:PORT)
            async with websockets.connect(url(port), origin="http://127.0.0.1:%d" % port) as client:
                await client.send("same host")
                assert await client.recv() == "same host"
            # a client that is not a browser sends no Origin
            async with websockets.connect(url(port)) as client:
                await client.send("no origin")
                assert await client.recv() == "no origin"
    run(body())


def test_route_origins_override_the_servers():
    async def body():
        server = Server(origins=["http://device.local"])

        @server.websocket("/open", origins=["*"])
        async def open_route(ws):
            await ws.send("open")

        async with running(server) as port:
            async with websockets.connect(url(port, "/open"), origin="http://evil.example") as client:
                assert await client.recv() == "open"
    run(body())


def test_server_shutdown_sends_1001_to_every_client():
    async def body():
        server = echo_server()
        await server.start("127.0.0.1", 0)
        clients = [await websockets.connect(url(server.port)) for _ in range(3)]
        await server.stop()
        for client in clients:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(client.recv(), 5)
            assert client.close_code == 1001
    run(body())


def test_concurrent_sends_never_interleave_frames():
    async def body():
        server = Server()

        @server.websocket("/ws")
        async def handler(ws):
            async def sender(tag):
                for i in range(20):
                    await ws.send(bytes([tag]) * (3000 + i))

            await asyncio.gather(*(sender(tag) for tag in range(5)))
            await ws.close()

        async with running(server) as port:
            async with websockets.connect(url(port)) as client:
                received = []
                async for message in client:
                    received.append(message)
                assert len(received) == 100
                for message in received:
                    assert message == message[:1] * len(message)
    run(body())
