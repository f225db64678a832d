"""wss:// under MicroPython's ssl: a self-signed certificate made by openssl
in the test, loaded by the server as DER (ssl.SSLContext(PROTOCOL_TLS_SERVER)
.load_cert_chain), and the `websockets` client trusting exactly that
certificate."""

import asyncio
import os
import socket
import ssl
import subprocess

import pytest
import websockets

HEAP = "512k"
MAX_SIZE = 16384


def openssl(*args):
    try:
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=120)
    except OSError as error:
        pytest.fail("openssl is needed to make the test certificate (apt-get install -y openssl): %r" % error,
                    pytrace=False)
    except subprocess.CalledProcessError as error:
        pytest.fail("openssl %s failed: %s" % (" ".join(args), error.stderr.decode(errors="replace")),
                    pytrace=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """(cert.pem for the client, cert.der and key.der for MicroPython)."""
    folder = str(tmp_path_factory.mktemp("tls"))
    pem, key_pem = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    der, key_der = os.path.join(folder, "cert.der"), os.path.join(folder, "key.der")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key_pem, "-out", pem, "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1")
    openssl("x509", "-in", pem, "-outform", "DER", "-out", der)
    openssl("pkey", "-in", key_pem, "-outform", "DER", "-out", key_der)
    return pem, der, key_der


@pytest.fixture
def server(mp_server, certificate):
    _, der, key_der = certificate
    return mp_server(heap=HEAP, max_size=MAX_SIZE, max_clients=2, cert=der, key=key_der)


def trusting(certificate):
    return ssl.create_default_context(cafile=certificate[0])


def run(coroutine, timeout=60):
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


async def wss_echo(server, context, messages):
    async with websockets.connect(server.url(scheme="wss"), ssl=context, open_timeout=20) as ws:
        assert ws.protocol.state.name == "OPEN"
        for message in messages:
            await ws.send(message)
            assert await ws.recv() == message
        await ws.close()
        assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000


def test_wss_echo(server, certificate):
    messages = ["over TLS", b"", b"\x00\x01" * 500, "\u00e9" * 300, bytes(range(256)) * 64, "x" * MAX_SIZE]
    run(wss_echo(server, trusting(certificate), messages))
    server.assert_alive()


def test_two_wss_clients_at_once(server, certificate):
    async def body():
        context = trusting(certificate)
        clients = [await websockets.connect(server.url(scheme="wss"), ssl=context, open_timeout=20)
                   for _ in range(2)]
        for round_number in range(20):
            for i, ws in enumerate(clients):
                await ws.send("client %d round %d" % (i, round_number))
            for i, ws in enumerate(clients):
                assert await ws.recv() == "client %d round %d" % (i, round_number)
        for ws in clients:
            await ws.close()
            assert ws.protocol.close_rcvd.code == 1000
    run(body())


def test_untrusted_and_plain_clients_fail_and_the_server_goes_on(server, certificate):
    async def body():
        with pytest.raises(ssl.SSLCertVerificationError):
            async with websockets.connect(server.url(scheme="wss"), ssl=ssl.create_default_context(),
                                          open_timeout=20):
                pass
        # plain ws:// to the TLS port gets no WebSocket
        with pytest.raises((websockets.exceptions.InvalidMessage, websockets.exceptions.InvalidHandshake,
                            OSError, asyncio.TimeoutError, EOFError)):
            async with websockets.connect(server.url(), open_timeout=3):
                pass
        await wss_echo(server, trusting(certificate), ["still serving"])
    run(body())
    server.assert_alive()


def test_a_stalled_tls_handshake_does_not_block_others(server, certificate):
    silent = socket.create_connection(("127.0.0.1", server.port), timeout=5)  # never says hello
    garbage = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    garbage.sendall(b"\x16\x03\x01\x00")  # the start of a TLS record, then nothing
    try:
        run(wss_echo(server, trusting(certificate), ["beside two stalled handshakes"]), timeout=30)
    finally:
        silent.close()
        garbage.close()
    server.assert_alive()
