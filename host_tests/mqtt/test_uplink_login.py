"""The uplink logs in with the block's user and password (a broker that
admits no anonymous client), says why when it is refused, and never shows
the password in what it logs."""
import asyncio
import shutil
import subprocess

import pytest

from host_tests.mqtt.broker import Mosquitto
from mqtt_config import parse_mqtt
from uplink import Uplink


@pytest.fixture
def locked_broker(tmp_path):
    passwd = shutil.which("mosquitto_passwd")
    if passwd is None:
        pytest.skip("mosquitto_passwd is not installed (Debian's mosquitto package has it)")
    path = str(tmp_path / "passwd")
    subprocess.run([passwd, "-c", "-b", path, "device", "hunter22"], check=True, capture_output=True)
    broker = Mosquitto(str(tmp_path), websockets=False, password_file=path).start()
    yield broker
    broker.stop()


def attempt(port, user, password, seconds=3.0):
    logs = []

    async def run():
        settings = parse_mqtt({"host": "127.0.0.1", "port": port, "user": user, "password": password}, 20, None)
        up = Uplink(settings, "login", lambda p, q: "", lambda: "{}", log=lambda *parts: logs.append(" ".join(parts)))
        task = asyncio.create_task(up.run())
        for _ in range(int(seconds / 0.05)):
            if up.state == "connected" or logs:
                break
            await asyncio.sleep(0.05)
        state = up.state
        await up.stop()
        task.cancel()
        return state

    return asyncio.run(run()), logs


def test_the_right_password_gets_in(locked_broker):
    state, logs = attempt(locked_broker.port, "device", "hunter22")
    assert state == "connected", logs


@pytest.mark.parametrize("user, password", [("device", "wrong"), ("", "")])
def test_a_refusal_says_why_and_never_shows_the_password(locked_broker, user, password):
    state, logs = attempt(locked_broker.port, user, password)
    assert state != "connected"
    assert logs and "broker refused the connection: " in logs[0], logs
    assert "not authorized" in logs[0] or "bad user name or password" in logs[0]
    assert not password or password not in " ".join(logs)
