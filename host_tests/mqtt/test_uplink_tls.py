"""The uplink over TLS ("tls": true with a "ca" file) to a mosquitto TLS
listener whose certificate comes from a CA made here with openssl: it
connects and publishes on CPython and on MicroPython (mbedtls), and a
broker certificate from another CA is refused on both."""
import shutil
import subprocess

import pytest

from host_tests.mqtt.broker import Mosquitto
from host_tests.mqtt.helpers import Simulator, Subscriber, wait_until


def make_ca(folder, name):
    ca_key, ca = str(folder / (name + "-ca.key")), str(folder / (name + "-ca.pem"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=%s test CA" % name, "-keyout", ca_key, "-out", ca], check=True, capture_output=True)
    return ca_key, ca


@pytest.fixture
def tls_broker(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (.ci/run installs it)")
    ca_key, ca = make_ca(tmp_path, "good")
    key, csr, cert = (str(tmp_path / n) for n in ("server.key", "server.csr", "server.pem"))
    ext = tmp_path / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:127.0.0.1\n")
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", key,
                    "-out", csr], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                    "-days", "2", "-extfile", str(ext), "-out", cert], check=True, capture_output=True)
    _, other_ca = make_ca(tmp_path, "other")
    broker = Mosquitto(str(tmp_path), tls=(ca, cert, key)).start()
    broker.ca, broker.other_ca = ca, other_ca
    yield broker
    broker.stop()


@pytest.mark.parametrize("micropython", [False, True], ids=["cpython", "micropython"])
def test_the_uplink_publishes_over_tls_and_checks_the_broker(tls_broker, micropython):
    sub = Subscriber(tls_broker.port)  # the plain listener of the same broker
    sim = Simulator(tls_broker.tls_port, devices=1, rate=10, micropython=micropython,
                    extra=["--mqtt-ca", tls_broker.ca])
    try:
        wait_until(lambda: len(sub.messages("microws/sim/samples")) >= 10, 30, "samples over TLS")
        assert sub.messages("microws/sim/status")[-1] == b"online"
    finally:
        sim.stop()
    wrong = Simulator(tls_broker.tls_port, devices=1, rate=10, micropython=micropython,
                      extra=["--mqtt-ca", tls_broker.other_ca, "--name", "wrong"])
    try:
        wait_until(lambda: "mqtt: cannot connect" in "".join(wrong.lines), 15, "the refused certificate")
        assert not sub.messages("microws/wrong/samples")
        assert "connected to" not in "".join(wrong.lines)
    finally:
        wrong.stop()
        sub.close()
