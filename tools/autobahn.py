#!/usr/bin/env python3
"""Run the Autobahn|Testsuite server cases (1.x-7.x, 9.x, 10.x) against microws.

Why this file exists
--------------------
Autobahn's own runner (``wstest -m fuzzingclient``) is Python 2 code.  PyPI's
``kosoku==0.1.0`` drives the suite's own case files from Python 3, but as
shipped it cannot serve as a test command:

* 6.x: valid UTF-8 payloads are written in the case files as Python 2 byte
  strings ('\\xce\\xba...').  Under Python 3 they are ``str`` and kosoku
  UTF-8-encodes them a second time, so the server never receives the octets
  the case is about.  We send the exact octets and compare the echo as octets.
* it has no closing-handshake timeout: a server that never answers a close
  hangs the run.  Every case runs under a wall-clock limit (verdict TIMEOUT).
* it does not look at the server's frames the way Autobahn's client does
  (masking, RSV bits, control frame size, close codes), nor at the opening
  handshake's Sec-WebSocket-Accept, nor at whether the server drops the TCP
  connection after a closing handshake.  Checks X1-X4 of the table do.
* its native runtime can abort while the interpreter shuts down, after all
  cases have run.  We write everything first, then leave with os._exit().

A case counts as passed when its Autobahn verdict is OK, NON-STRICT or
INFORMATIONAL.  A broken closing handshake lowers a passed case the way
Autobahn's report colours it: UNCLEAN or FAILED -> FAILED, WRONG CODE or
FAILED BY CLIENT -> NON-STRICT.  Compression (12.x, 13.x) is out of scope:
microws does not implement permessage-deflate.

Usage:
    python3 tools/autobahn.py HOST:PORT [-i GLOB]... [-x GLOB]...
            [--report DIR] [--case-timeout S] [--max-time S]

Exit status: 0 when no case or check is FAILED, ERROR or TIMEOUT; 1 when one
is; 2 when the run could not start (kosoku missing, server unreachable, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import fnmatch
import hashlib
import importlib
import importlib.metadata
import os
import socket
import struct
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

DEFAULT_CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*"]
GROUP_NAMES = {
    "1": "Framing",
    "2": "Pings/Pongs",
    "3": "Reserved bits",
    "4": "Opcodes",
    "5": "Fragmentation",
    "6": "UTF-8 handling",
    "7": "Close handling",
    "9": "Limits/performance",
    "10": "Auto-fragmentation",
}
VERDICTS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED", "ERROR", "TIMEOUT"]
BAD_VERDICTS = {"FAILED", "ERROR", "TIMEOUT"}
# Lowest to highest severity, to combine a case's two Autobahn verdicts.
SEVERITY = ["OK", "INFORMATIONAL", "NON-STRICT", "UNIMPLEMENTED", "FAILED", "ERROR", "TIMEOUT"]
# Closing-handshake verdict -> what it makes of a passed case (Autobahn's colours).
CLOSE_VERDICT_EFFECT = {
    "OK": "OK",
    "INFORMATIONAL": "OK",
    "WRONG CODE": "NON-STRICT",
    "FAILED BY CLIENT": "NON-STRICT",
    "UNCLEAN": "FAILED",
    "FAILED": "FAILED",
}
# Close codes an endpoint may put on the wire (RFC 6455 7.4, IANA registry);
# what Autobahn's client accepts from a server.
VALID_CLOSE_CODES = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
VALID_CLOSE_CODES |= set(range(3000, 5000))
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MARGIN_S = 1.0  # the closing-handshake and TCP-drop limits of Autobahn's client


@dataclass
class Outcome:
    """The verdict of one case or check, as shown in the table."""

    name: str  # case id ("5.19") or check id ("X2")
    verdict: str
    reason: str = ""
    seconds: float = 0.0
    result: object = None  # kosoku's CaseResult, for --report
    frame_problems: list = field(default_factory=list)
    not_run: bool = False  # the run stopped before this case


# --------------------------------------------------------------------------- setup
def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("address", help="server under test: HOST:PORT[/path] or ws://HOST:PORT/path")
    ap.add_argument("-i", "--include", action="append", metavar="GLOB",
                    help="case id or glob to run, repeatable (default: %s)" % " ".join(DEFAULT_CASES))
    ap.add_argument("-x", "--exclude", action="append", metavar="GLOB", default=[],
                    help="case id or glob to leave out, repeatable")
    ap.add_argument("--report", metavar="DIR",
                    help="write Autobahn-style per-case reports and summary.txt into DIR")
    ap.add_argument("--case-timeout", type=float, default=20.0, metavar="S",
                    help="wall-clock limit per case; 9.x cases get their own WAITSECS on top"
                         " (default: %(default)s)")
    ap.add_argument("--max-time", type=float, default=None, metavar="S",
                    help="wall-clock budget for the whole run; cases not finished by then"
                         " are TIMEOUT (default: none)")
    return ap.parse_args(argv)


def parse_address(address):
    """'HOST:PORT[/path]' or 'ws://HOST:PORT/path' -> (host, port, path, url)."""
    rest = address.split("://", 1)[-1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {address!r}")
    path = "/" + path
    return host.strip("[]"), int(port), path, f"ws://{hostport}{path}"


def setup_error(message):
    """The run cannot start: say why and exit 2 (1 means the server failed)."""
    print(f"autobahn.py: {message}", file=sys.stderr)
    sys.exit(2)


def import_kosoku():
    """Import kosoku and its vendored case index; exit 2 with the fix if missing."""
    try:
        kosoku = importlib.import_module("kosoku")
        cases = importlib.import_module("kosoku.cases")
    except ImportError as exc:
        setup_error(f"cannot import kosoku ({exc}); "
                    "pip install kosoku==0.1.0 (needs CPython >= 3.10 on x86-64 Linux)")
    return kosoku, cases.CASES


def select_cases(all_ids, include, exclude):
    """Case ids matching any include glob and no exclude glob, in suite order."""
    def matches(cid, globs):
        return any(fnmatch.fnmatchcase(cid, g) for g in globs)

    return [c for c in all_ids if matches(c, include) and not matches(c, exclude)]


def server_reachable(host, port):
    try:
        socket.create_connection((host, port), timeout=5).close()
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------- 6.x fix
def _is_py2_byte_string(payload):
    """A str of code points < 256 whose latin-1 octets are valid, non-ASCII
    UTF-8 is a Python 2 byte string literal ('\\xce\\xba'), not text."""
    if not isinstance(payload, str) or payload.isascii():
        return False
    try:
        payload.encode("latin-1").decode("utf-8")
        return True
    except UnicodeError:
        return False


def fix_utf8_cases(cases):
    """Make the 6.x cases send their exact UTF-8 octets; return the fixed ids."""
    base_on_message = importlib.import_module("case").Case.onMessage  # Autobahn's case.py

    def on_message_as_octets(self, msg, binary):
        # kosoku hands over received text as str; PAYLOAD is now bytes.
        if not binary and isinstance(msg, str):
            msg = msg.encode("utf-8", "surrogatepass")
        base_on_message(self, msg, binary)

    fixed = []
    for cid, cls in cases.items():
        if cid.startswith("6.") and _is_py2_byte_string(getattr(cls, "PAYLOAD", None)):
            cls.PAYLOAD = cls.PAYLOAD.encode("latin-1")
            cls.onMessage = on_message_as_octets
            fixed.append(cid)
    return fixed


# --------------------------------------------------------------------------- running cases
class _NullProtocol:
    """Stands in for the connection when reading a case's settings: attribute
    writes are kept, method calls do nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def case_limit(cls, base):
    """Seconds a case may run before it is TIMEOUT: `base`, plus the case's
    own waiting time if it has one (9.x: WAITSECS, 10 to 1000 s, mostly set
    in init())."""
    wait = getattr(cls, "WAITSECS", None)
    if wait is None:
        try:
            wait = getattr(cls(_NullProtocol()), "WAITSECS", None)
        except Exception:  # noqa: BLE001 - a case we cannot probe just gets `base`
            wait = None
    return base + (wait or 0)


async def run_case(kosoku, url, cid, limit):
    """Run one case through kosoku under a wall-clock limit -> Outcome."""
    start = time.monotonic()
    try:
        results = await asyncio.wait_for(kosoku.run_fuzzingclient(url, [cid]), limit)
    except kosoku.FailureError as exc:  # raised when the case did not pass
        results = exc.results
    except asyncio.TimeoutError:
        return Outcome(cid, "TIMEOUT", seconds=time.monotonic() - start, reason=(
            f"no verdict within {limit:.0f} s: the server stopped answering "
            "(no echo, no close reply, or TCP never dropped)"))
    except Exception as exc:  # noqa: BLE001 - any runner failure is this case's ERROR
        return Outcome(cid, "ERROR", f"{type(exc).__name__}: {exc}", time.monotonic() - start)
    seconds = time.monotonic() - start
    if not results:
        return Outcome(cid, "ERROR", "kosoku returned no result", seconds)
    return outcome_of(cid, results[0], seconds)


def outcome_of(cid, res, seconds):
    behavior = res.behavior.value
    close = res.behavior_close.value
    verdict = behavior
    if behavior in ("OK", "NON-STRICT", "INFORMATIONAL"):
        verdict = max(behavior, CLOSE_VERDICT_EFFECT.get(close, "FAILED"), key=SEVERITY.index)
    return Outcome(cid, verdict, explain(res, verdict), seconds, res,
                   audit_case_frames(res.wirelog))


def _short(value, limit=90):
    text = ascii(value)  # ASCII only: logs may not be UTF-8
    return text if len(text) <= limit else text[: limit - 4] + " ..."


# kosoku's verdict prose that says nothing the events do not say better
GENERIC_RESULTS = {"Actual events match at least one expected.",
                   "Actual events differ from any expected."}


def explain(res, verdict):
    """One line on why a case is not OK (empty for OK)."""
    if verdict == "OK":
        return ""
    behavior, close = res.behavior.value, res.behavior_close.value
    if behavior == "ERROR":
        return res.result
    parts = []
    if behavior != "OK":
        if res.result not in GENERIC_RESULTS:
            parts.append(res.result)
        strict = (res.expected or {}).get("OK")
        if strict is not None and strict != res.received:
            parts.append(f"expected {_short(strict)}, got {_short(res.received)}")
    if close not in ("OK", "INFORMATIONAL"):
        parts.append(f"closing handshake {close}"
                     + ("" if res.result_close in parts else f": {res.result_close}"))
    server_close = f"server close code {res.remote_close_code}"
    if res.remote_close_reason:
        server_close += f" {res.remote_close_reason!a}"
    parts.append(server_close)
    return "; ".join(parts)


async def run_cases(kosoku, cases, ids, url, base_limit, max_time, server_up):
    """Run the cases one at a time (as Autobahn does), reporting progress on
    stderr.  Stops early when the --max-time budget is used up or the server
    no longer accepts connections; the cases left are then marked not run."""
    start = time.monotonic()
    deadline = start + max_time if max_time else None
    outcomes = []
    for n, cid in enumerate(ids, 1):
        limit = case_limit(cases[cid], base_limit)
        left = deadline - time.monotonic() if deadline else limit
        if left <= 0:
            return outcomes + not_run(ids[n - 1:], "TIMEOUT", f"--max-time {max_time:.0f} s used up")
        outcome = await run_case(kosoku, url, cid, min(limit, left))
        if outcome.verdict == "TIMEOUT" and left < limit:
            outcome.reason += f" (--max-time {max_time:.0f} s used up)"
        outcomes.append(outcome)
        report_progress(outcome, n, len(ids), ids, time.monotonic() - start)
        if outcome.verdict == "ERROR" and not server_up():
            print(f"autobahn.py: the server stopped accepting connections during {cid}",
                  file=sys.stderr, flush=True)
            return outcomes + not_run(
                ids[n:], "ERROR", f"the server stopped accepting connections during {cid}")
    return outcomes


def not_run(ids, verdict, why):
    return [Outcome(cid, verdict, f"not run: {why}", not_run=True) for cid in ids]


def report_progress(outcome, n, total, ids, elapsed):
    group = outcome.name.split(".")[0]
    if outcome.verdict != "OK":
        print(f"  {outcome.name}: {outcome.verdict} ({outcome.seconds:.1f} s)", file=sys.stderr)
    if n == total or ids[n].split(".")[0] != group:
        print(f"[{n:3d}/{total}] cases {group}.* done, {elapsed:5.1f} s", file=sys.stderr)
    sys.stderr.flush()


# --------------------------------------------------------------------------- frame audit (X4)
def frame_problems(opcode, fin, rsv, masked, length, payload):
    """What Autobahn's client would reject in one server->client frame.
    `payload` is the close frame's payload (None when not known)."""
    problems = []
    if masked:
        problems.append(f"opcode {opcode}: masked (servers must not mask)")
    if rsv:
        problems.append(f"opcode {opcode}: RSV bits {rsv:03b} set, no extension negotiated")
    if opcode in (3, 4, 5, 6, 7) or opcode > 10:
        problems.append(f"reserved opcode {opcode}")
    if opcode >= 8 and not fin:
        problems.append(f"opcode {opcode}: fragmented control frame")
    if opcode >= 8 and length > 125:
        problems.append(f"opcode {opcode}: control frame over 125 bytes")
    if opcode == 8 and payload is not None:
        problems += close_payload_problems(length, payload)
    return problems


def close_payload_problems(length, payload):
    if length == 1:
        return ["close frame with a 1-byte payload"]
    if len(payload) < 2:
        return []
    code = int.from_bytes(payload[:2], "big")
    if code not in VALID_CLOSE_CODES:
        return [f"close code {code} may not be sent"]
    if len(payload) == length:  # reason complete in the log
        try:
            payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            return ["close reason is not valid UTF-8"]
    return []


def _logged_close_payload(data):
    """kosoku logs a close payload as '0x03e8...' (possibly cut, ending ' ...')."""
    if not isinstance(data, str) or not data.startswith("0x"):
        return None
    hexdigits = data[2:].split(" ", 1)[0]
    try:
        return bytes.fromhex(hexdigits[: len(hexdigits) // 2 * 2])
    except ValueError:
        return None


def audit_case_frames(wirelog):
    """Problems in the received frames ('RF') of a kosoku wire log.  9.x cases
    switch the log off during bulk traffic, so only part of it is seen."""
    problems = set()
    for entry in wirelog or []:
        if not entry or entry[0] != "RF":
            continue
        (length, data), opcode, fin, rsv, masked = entry[1:6]
        payload = _logged_close_payload(data) if opcode == 8 else None
        problems.update(frame_problems(opcode, fin, rsv, masked, length, payload))
    return sorted(problems)


def frames_check(outcomes, extra_frames):
    """X4: every server frame seen, in the cases and in checks X1-X3."""
    where = {}  # problem -> names of the connections it was seen on
    for o in outcomes:
        for problem in o.frame_problems:
            where.setdefault(problem, []).append(o.name)
    for problem in sorted({p for f in extra_frames for p in frame_problems(*f)}):
        where.setdefault(problem, []).append("X1-X3")
    if not where:
        return Outcome("X4", "OK")
    return Outcome("X4", "FAILED", "; ".join(
        f"{problem} (in {_some(names)})" for problem, names in sorted(where.items())))


def _some(names, limit=5):
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


# --------------------------------------------------------------------------- raw-socket checks (X1-X3)
class RawClient:
    """A minimal blocking WebSocket client that shows what the server sends."""

    def __init__(self, host, port, path):
        self.frames = []  # (opcode, fin, rsv, masked, length, payload) received
        self.buf = b""
        self.key = base64.b64encode(os.urandom(16))
        self.sock = socket.create_connection((host, port), timeout=5)
        try:
            self.sock.sendall(
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {self.key.decode()}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            self.status, self.headers = self._read_response_head(time.monotonic() + 5)
        except BaseException:
            self.sock.close()
            raise

    def close(self):
        self.sock.close()

    def _recv(self, deadline):
        """More bytes, or b'' on EOF; None on timeout."""
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        self.sock.settimeout(left)
        try:
            return self.sock.recv(65536)
        except socket.timeout:
            return None
        except OSError:  # reset counts as dropped
            return b""

    def _read_response_head(self, deadline):
        while b"\r\n\r\n" not in self.buf:
            data = self._recv(deadline)
            if not data:
                raise ConnectionError("no complete HTTP response to the opening handshake")
            self.buf += data
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        return status, headers

    def send(self, opcode, payload=b"", rsv=0):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | rsv << 4 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _parse_frame(self):
        """One complete frame from the buffer, or None."""
        buf = self.buf
        if len(buf) < 2:
            return None
        length, offset = buf[1] & 0x7F, 2
        if length >= 126:
            size = 2 if length == 126 else 8
            if len(buf) < 2 + size:
                return None
            length, offset = int.from_bytes(buf[2:2 + size], "big"), 2 + size
        masked = bool(buf[1] & 0x80)
        key, offset = (buf[offset:offset + 4], offset + 4) if masked else (b"\0\0\0\0", offset)
        if len(buf) < offset + length:
            return None
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(buf[offset:offset + length]))
        self.buf = buf[offset + length:]
        return buf[0] & 0x0F, bool(buf[0] & 0x80), (buf[0] >> 4) & 7, masked, length, payload

    def wait_close_frame(self, seconds):
        """Payload of the next close frame; None plus 'timeout'/'eof' if none came."""
        deadline = time.monotonic() + seconds
        while True:
            frame = self._parse_frame()
            if frame:
                self.frames.append(frame)
                if frame[0] == 8:
                    return frame[5], None
                continue
            data = self._recv(deadline)
            if data is None:
                return None, "timeout"
            if not data:
                return None, "eof"
            self.buf += data

    def wait_eof(self, seconds):
        """True if the server drops the TCP connection within `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            data = self._recv(deadline)
            if data is None:
                return False
            if not data:
                return True


def check_handshake(host, port, path, frames):
    """X1: 101 Switching Protocols with the right Sec-WebSocket-Accept."""
    client = RawClient(host, port, path)
    client.close()
    accept = base64.b64encode(hashlib.sha1(client.key + WS_GUID).digest()).decode()
    problems = []
    if client.status.split()[1:2] != ["101"]:
        problems.append(f"status line {client.status!a}")
    if [v.lower() for v in client.headers.get("upgrade", [])] != ["websocket"]:
        problems.append(f"Upgrade: {client.headers.get('upgrade')}")
    if not any("upgrade" in v.lower() for v in client.headers.get("connection", [])):
        problems.append(f"Connection: {client.headers.get('connection')}")
    if client.headers.get("sec-websocket-accept") != [accept]:
        problems.append(f"Sec-WebSocket-Accept: {client.headers.get('sec-websocket-accept')}"
                        f", expected {accept}")
    return Outcome("X1", "FAILED" if problems else "OK", "; ".join(problems))


def check_client_close(host, port, path, frames):
    """X2: a close from the client is answered with a close frame, and the
    server drops TCP, each within 1 s (else Autobahn: UNCLEAN / FAILED BY CLIENT)."""
    client = RawClient(host, port, path)
    try:
        client.send(8, struct.pack("!H", 1000))
        payload, why = client.wait_close_frame(MARGIN_S)
        if payload is None:
            reason = ("dropped TCP without a close reply" if why == "eof"
                      else f"no close reply within {MARGIN_S:.0f} s")
            return Outcome("X2", "FAILED", reason)
        code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
        if code not in (None, 1000):
            return Outcome("X2", "FAILED", f"close reply with code {code}, expected 1000 or none")
        if not client.wait_eof(MARGIN_S):
            return Outcome("X2", "FAILED", f"TCP still open {MARGIN_S:.0f} s after the close reply")
        return Outcome("X2", "OK")
    finally:
        frames += client.frames
        client.close()


def check_protocol_error(host, port, path, frames):
    """X3: a protocol error (RSV1 set, no extension) gets close 1002, and the
    server drops TCP within 1 s of the client's close reply."""
    client = RawClient(host, port, path)
    try:
        client.send(1, b"hello", rsv=4)
        payload, why = client.wait_close_frame(MARGIN_S)
        if payload is None:
            reason = ("dropped TCP without sending close 1002" if why == "eof"
                      else f"no close frame within {MARGIN_S:.0f} s")
            if client.frames:
                reason += (", got frames with opcodes "
                           f"{sorted({f[0] for f in client.frames})}: RSV1 went unnoticed")
            return Outcome("X3", "FAILED", reason)
        code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
        client.send(8, payload[:2])
        if code != 1002:
            return Outcome("X3", "FAILED", f"close code {code}, expected 1002")
        if not client.wait_eof(MARGIN_S):
            return Outcome("X3", "FAILED",
                           f"TCP still open {MARGIN_S:.0f} s after the client's close reply")
        return Outcome("X3", "OK")
    finally:
        frames += client.frames
        client.close()


EXTRA_CHECKS = [
    ("X1", "handshake: 101 + Accept", check_handshake),
    ("X2", "client close: reply, drop <= 1 s", check_client_close),
    ("X3", "protocol error: 1002, drop <= 1 s", check_protocol_error),
]
X4_TITLE = "server frames well-formed"


def run_extra_checks(host, port, path):
    """X1-X3 -> (outcomes, server frames those connections received)."""
    outcomes, frames = [], []
    for name, _title, check in EXTRA_CHECKS:
        start = time.monotonic()
        try:
            outcome = check(host, port, path, frames)
        except OSError as exc:  # includes ConnectionError and socket timeouts
            outcome = Outcome(name, "ERROR", f"{type(exc).__name__}: {exc}")
        outcome.seconds = time.monotonic() - start
        outcomes.append(outcome)
    return outcomes, frames


# --------------------------------------------------------------------------- table
def table_sections(case_outcomes, checks):
    """Rows of (label, Counter of verdicts): case groups, their total, checks."""
    groups = {}
    for o in case_outcomes:
        groups.setdefault(o.name.split(".")[0], Counter())[o.verdict] += 1
    titles = {name: title for name, title, _ in EXTRA_CHECKS}
    titles["X4"] = X4_TITLE
    return [
        [(f"{g:>2} {GROUP_NAMES.get(g, '')}", counts) for g, counts in groups.items()],
        [("   all cases", sum(groups.values(), Counter()))],
        [(f"{o.name} {titles[o.name]}", Counter([o.verdict])) for o in checks],
    ]


def format_table(title, case_outcomes, checks):
    sections = table_sections(case_outcomes, checks)
    width = max(len(label) for rows in sections for label, _ in rows)
    head = f"{'':{width}}  " + " ".join(VERDICTS) + "  total"
    rule = "-" * len(head)
    lines = [title, rule, head]
    for rows in sections:
        lines.append(rule)
        for label, counts in rows:
            cells = " ".join(f"{counts[v] or '-':>{len(v)}}" for v in VERDICTS)
            lines.append(f"{label:{width}}  {cells}  {sum(counts.values()):5d}")
    lines.append(rule)
    return lines


def format_not_ok(outcomes):
    """One line per case or check that is not OK; one line for the cases not run."""
    not_ok = [o for o in outcomes if o.verdict != "OK"]
    if not not_ok:
        return ["Every case and check is OK."]
    width = max([len(o.name) for o in not_ok if not o.not_run] or [0])
    skipped = [o for o in not_ok if o.not_run]
    lines = [f"Not OK ({len(not_ok)}):"]
    for o in not_ok:
        name = o.name
        if o.not_run:
            if o is not skipped[0]:
                continue
            name = f"{o.name} .. {skipped[-1].name} ({len(skipped)} cases)"
        lines.append(f"  {name:{width}}  {o.verdict:13}  {o.reason}")
    return lines


def kosoku_version():
    try:
        return importlib.metadata.version("kosoku")
    except importlib.metadata.PackageNotFoundError:
        return "?"


def format_summary(url, case_outcomes, checks, elapsed):
    everything = case_outcomes + checks
    bad = Counter(o.verdict for o in everything if o.verdict in BAD_VERDICTS)
    title = (f"Autobahn|Testsuite (kosoku {kosoku_version()}) against {url}: "
             f"{len(case_outcomes)} cases + {len(checks)} checks in {elapsed:.1f} s")
    lines = format_table(title, case_outcomes, checks)
    lines += format_not_ok(everything)
    verdict = ("PASSED" if not bad else
               "FAILED (" + ", ".join(f"{n} {v}" for v, n in sorted(bad.items())) + ")")
    lines.append(f"Autobahn result: {verdict}")
    text = "\n".join(lines) + "\n"
    return text.encode("ascii", "backslashreplace").decode("ascii"), not bad  # any log can show it


def write_report(directory, case_outcomes, summary):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "summary.txt"), "w", encoding="utf-8") as f:
        f.write(summary)
    results = [o.result for o in case_outcomes if o.result is not None]
    try:
        from kosoku._report import write_reports  # private, hence guarded
        write_reports(results, directory)
    except Exception as exc:  # noqa: BLE001 - the summary is already written
        print(f"autobahn.py: kosoku could not write per-case reports: {exc!r}", file=sys.stderr)


# --------------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    try:
        host, port, path, url = parse_address(args.address)
    except ValueError as exc:
        setup_error(str(exc))
    kosoku, cases = import_kosoku()
    ids = select_cases(list(cases), args.include or DEFAULT_CASES, args.exclude)
    if not ids:
        setup_error("no case matches the -i/-x selection")
    if not server_reachable(host, port):
        setup_error(f"nothing accepts TCP connections on {host}:{port}")
    fixed = fix_utf8_cases(cases)
    print(f"autobahn.py: {len(ids)} cases against {url} "
          f"({len(fixed)} 6.x payloads sent as exact UTF-8 octets)", file=sys.stderr, flush=True)

    start = time.monotonic()
    checks, extra_frames = run_extra_checks(host, port, path)
    case_outcomes = asyncio.run(
        run_cases(kosoku, cases, ids, url, args.case_timeout, args.max_time,
                  server_up=lambda: server_reachable(host, port)))
    checks.append(frames_check(case_outcomes, extra_frames))
    summary, passed = format_summary(url, case_outcomes, checks, time.monotonic() - start)

    sys.stderr.flush()
    print("\n" + summary, flush=True)
    if args.report:
        write_report(args.report, case_outcomes, summary)
    # kosoku's native runtime can abort during interpreter shutdown: skip it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if passed else 1)


if __name__ == "__main__":
    main()
