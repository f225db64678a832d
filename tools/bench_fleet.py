"""Fleet benchmark: N simulated devices at R samples/s through one MQTT broker to M subscribers.

    python3 tools/bench_fleet.py [--devices 100] [--rate 2] [--subscribers 10]
                                 [--seconds 20] [--device-processes 2]
                                 [--subscriber-processes 2] [--broker HOST:PORT] [--page] [--json]

Starts Mosquitto on loopback (unless --broker names a running one), the
devices as `tools/simulate.py --mqtt ... --devices K` processes (the firmware's
App with its uplink, as on a laptop fleet), and M subscribers (paho-mqtt),
each subscribed to microws/+/samples. Once every subscriber sees every
device, it measures for --seconds:

- messages per second: samples the devices published (broker in) and the
  subscribers received (broker out, M times as many when nothing is lost);
- end-to-end latency, p50 and p99: a subscriber's receive time minus the
  sample's `ts` (the device's wall-clock time when it took the sample; the
  simulator's clock is the host's, so both ends read the same clock);
- loss: the seq numbers missing in each device's stream at each subscriber
  (gaps between the first and the last seq it saw in the window), and
  samples that came out of order;
- CPU, from /proc/<pid>/stat (utime + stime): the broker's, the device
  processes', the subscribers', each in percent of one core;
- with --page, the fleet page (tools/fleet.py) in headless Chromium as one
  more subscriber: how busy its main thread is (Chromium's TaskDuration).

CPython on Linux only (/proc); needs paho-mqtt (host_tests/requirements.txt)
and, without --broker, /usr/sbin/mosquitto (apt-get install mosquitto).
"""

import argparse
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIMULATE = os.path.join(ROOT, "tools", "simulate.py")
CLK_TCK = os.sysconf("SC_CLK_TCK")
ROOT_TOPIC = "microws"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_range(count):
    """A first port of count consecutive free loopback ports (simulate.py --devices N listens on
    PORT ... PORT+N-1), below the kernel's ephemeral range: the devices' own connections to the
    broker take ports from that range while the later devices are still binding theirs."""
    import random

    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32768
    low = 10000
    if ephemeral - count <= low:
        raise SystemExit("bench_fleet: no room for %d ports below the ephemeral range (%d)" % (count, ephemeral))
    for _ in range(200):
        first = random.randrange(low, ephemeral - count)
        try:
            for port in range(first, first + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise SystemExit("bench_fleet: no %d consecutive free ports" % count)


def wait_for_port(port, proc, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit("bench_fleet: %s exited with %s" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("bench_fleet: %s did not listen on port %d" % (what, port))


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def percentile(sorted_values, fraction):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, int(round(fraction * (len(sorted_values) - 1)))))
    return sorted_values[index]


# ------------------------------------------------------------------ the broker

def start_mosquitto(folder, websockets=False):
    """Mosquitto on a free loopback port (and a WebSocket listener for the fleet page),
    nothing persisted; returns (process, port, ws_port or None)."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.path.exists(binary):
        raise SystemExit("bench_fleet: mosquitto not found: apt-get install -y mosquitto (or pass --broker HOST:PORT)")
    port = free_port()
    ws_port = free_port() if websockets else None
    conf = os.path.join(folder, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write("listener %d 127.0.0.1\n" % port)
        if ws_port:
            f.write("listener %d 127.0.0.1\nprotocol websockets\n" % ws_port)
        f.write("allow_anonymous true\npersistence false\n"
                "max_queued_messages 10000\nlog_dest file %s\n" % os.path.join(folder, "mosquitto.log"))
    proc = subprocess.Popen([binary, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wait_for_port(port, proc, "mosquitto")
    if ws_port:
        wait_for_port(ws_port, proc, "mosquitto's WebSocket listener")
    return proc, port, ws_port


# ------------------------------------------------------------------ the devices

def device_command(host, port, count, rate, name, seed, first_port):
    """One simulator process with count devices (NAME-1 ... NAME-count) publishing to the broker;
    each also serves its dashboard on a loopback port of its own (first_port ...), as a laptop fleet does."""
    return [sys.executable, SIMULATE, "--mqtt", "%s:%d" % (host, port), "--devices", str(count),
            "--rate", str(rate), "--name", name, "--seed", str(seed), "--host", "127.0.0.1",
            "--port", str(first_port)]


def split(total, parts):
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# ------------------------------------------------------------------ the subscribers

def subscriber_main(host, port, clients, recording, finished, seen, results):
    """A process of paho clients, each subscribed to <root>/+/samples.

    While `recording` is set, every sample's receive time, seq and ts are kept
    per client and device; `seen` holds the fewest devices any of its clients
    has heard from (so the bench knows when all are there)."""
    import paho.mqtt.client as mqtt

    class Subscriber:
        def __init__(self, index):
            self.devices = set()
            self.streams = {}  # device -> [seq, ...] in arrival order, while recording
            self.latencies = []
            self.received = 0
            self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                      client_id="bench-sub-%d-%d" % (os.getpid(), index))
            self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(ROOT_TOPIC + "/+/samples", qos=0)
            self.client.on_message = self.on_message
            self.client.connect(host, port, keepalive=60)
            self.client.loop_start()

        def on_message(self, client, userdata, message):
            now_ms = time.time() * 1000.0
            device = message.topic.split("/")[-2]
            self.devices.add(device)
            if not recording.is_set():
                return
            sample = json.loads(message.payload)
            self.received += 1
            self.streams.setdefault(device, []).append(sample["seq"])
            if isinstance(sample.get("ts"), (int, float)):
                self.latencies.append(now_ms - sample["ts"])

    subscribers = [Subscriber(i) for i in range(clients)]
    while not finished.is_set():
        seen.value = min(len(s.devices) for s in subscribers)
        time.sleep(0.1)
    for s in subscribers:
        s.client.loop_stop()
        s.client.disconnect()
    missing = out_of_order = expected = 0
    for s in subscribers:
        for seqs in s.streams.values():
            unique = set(seqs)
            expected += max(seqs) - min(seqs) + 1
            missing += max(seqs) - min(seqs) + 1 - len(unique)
            out_of_order += sum(1 for a, b in zip(seqs, seqs[1:]) if b <= a)
    results.put({
        "received": sum(s.received for s in subscribers),
        "expected": expected, "missing": missing, "out_of_order": out_of_order,
        "latencies": [x for s in subscribers for x in s.latencies],
        "streams": sum(len(s.streams) for s in subscribers),
    })


# ------------------------------------------------------------------ the fleet page

class FleetPage:
    """tools/fleet.py and the page in headless Chromium (Playwright, Debian's /usr/bin/chromium):
    how busy the page's main thread is (Chromium's TaskDuration) while the fleet streams."""

    def __init__(self, ws_port, folder):
        from playwright.sync_api import sync_playwright

        port = free_port()
        self.server = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "fleet.py"), "--broker",
                                        "ws://127.0.0.1:%d" % ws_port, "--port", str(port)],
                                       stdout=open(os.path.join(folder, "fleet.log"), "ab"), stderr=subprocess.STDOUT)
        wait_for_port(port, self.server, "tools/fleet.py")
        self.playwright = sync_playwright().start()
        chromium = os.environ.get("MICROWS_CHROMIUM") or "/usr/bin/chromium"
        self.browser = self.playwright.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox"])
        self.page = self.browser.new_page(viewport={"width": 1400, "height": 900})
        self.page.goto("http://127.0.0.1:%d/" % port)
        self.cdp = self.page.context.new_cdp_session(self.page)
        self.cdp.send("Performance.enable")

    def wait_for(self, devices, timeout):
        self.page.wait_for_function("n => document.querySelectorAll('.dev[data-state=online]').length >= n",
                                    arg=devices, timeout=timeout * 1000)

    def busy_seconds(self):
        metrics = self.cdp.send("Performance.getMetrics")["metrics"]
        return next(m["value"] for m in metrics if m["name"] == "TaskDuration")

    def close(self):
        self.browser.close()
        self.playwright.stop()
        self.server.terminate()
        self.server.wait(5)


# ------------------------------------------------------------------ the run

def run(devices, rate, subscribers, seconds, device_processes, subscriber_processes, broker=None,
        page=False, settle=60.0):
    folder = tempfile.mkdtemp(prefix="bench_fleet-")
    procs = []
    broker_proc = None
    fleet_page = None
    page_busy = None
    try:
        if broker:
            host, _, port = broker.rpartition(":")
            port = int(port)
        else:
            broker_proc, port, ws_port = start_mosquitto(folder, websockets=page)
            host = "127.0.0.1"
        ctx = multiprocessing.get_context("spawn")
        recording, finished = ctx.Event(), ctx.Event()
        results = ctx.Queue()
        subs = []
        for i, count in enumerate(split(subscribers, subscriber_processes)):
            seen = ctx.Value("i", 0)
            proc = ctx.Process(target=subscriber_main, args=(host, port, count, recording, finished, seen, results))
            proc.start()
            subs.append((proc, seen))
        next_port = free_port_range(devices)  # one range for all: no two devices on one port
        logs = []
        for i, count in enumerate(split(devices, device_processes)):
            cmd = device_command(host, port, count, rate, "bench%d" % i, 1 + i * 1000, next_port)
            next_port += count
            logs.append(os.path.join(folder, "devices%d.log" % i))
            with open(logs[-1], "ab") as log_file:
                procs.append(subprocess.Popen(cmd, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + settle
        while min(seen.value for _, seen in subs) < devices:
            for proc, log_path in zip(procs, logs):
                if proc.poll() is not None:
                    raise SystemExit("bench_fleet: a device process exited with %s:\n%s"
                                     % (proc.returncode, tail(log_path)))
            if time.monotonic() > deadline:
                raise SystemExit("bench_fleet: after %.0f s the subscribers see %d of %d devices:\n%s"
                                 % (settle, min(seen.value for _, seen in subs), devices, tail(logs[0])))
            time.sleep(0.2)
        if page:
            fleet_page = FleetPage(ws_port, folder)
            fleet_page.wait_for(devices, settle)
        time.sleep(1.0)  # past the first info bursts
        pids = {"broker": [broker_proc.pid] if broker_proc else [], "devices": [p.pid for p in procs],
                "subscribers": [p.pid for p, _ in subs]}
        before = {k: sum(cpu_seconds(pid) for pid in v) for k, v in pids.items()}
        started = time.monotonic()
        busy = fleet_page.busy_seconds() if fleet_page else None
        recording.set()
        time.sleep(seconds)
        recording.clear()
        elapsed = time.monotonic() - started
        after = {k: sum(cpu_seconds(pid) for pid in v) for k, v in pids.items()}
        if fleet_page:
            page_busy = (fleet_page.busy_seconds() - busy) / elapsed * 100.0
        finished.set()
        parts = [results.get(timeout=30) for _ in subs]
        for proc, _ in subs:
            proc.join(10)
    finally:
        if fleet_page is not None:
            fleet_page.close()
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if broker_proc is not None:
            broker_proc.terminate()
            broker_proc.wait(5)
    latencies = sorted(x for part in parts for x in part["latencies"])
    received = sum(part["received"] for part in parts)
    expected = sum(part["expected"] for part in parts)
    missing = sum(part["missing"] for part in parts)
    cpu = {k: (after[k] - before[k]) / elapsed * 100.0 if pids[k] else None for k in pids}
    published = expected / subscribers if subscribers else 0
    return {
        "devices": devices, "rate": rate, "subscribers": subscribers, "seconds": round(elapsed, 2),
        "device_processes": len(procs), "subscriber_processes": len(subs),
        "streams": sum(part["streams"] for part in parts),
        "published_per_s": published / elapsed,
        "offered_per_s": devices * rate,
        "received_per_s": received / elapsed,
        "received": received, "expected": expected, "missing": missing,
        "loss": missing / expected if expected else None,
        "out_of_order": sum(part["out_of_order"] for part in parts),
        "latency_ms": {"p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99),
                       "max": latencies[-1] if latencies else None, "n": len(latencies)},
        "cpu_percent": cpu,
        # CPU time per message, so runs of different sizes compare
        "broker_us_per_delivery": (after["broker"] - before["broker"]) * 1e6 / (received + (published if page else 0))
        if pids["broker"] and received else None,  # the page gets every sample too
        "device_us_per_sample": (after["devices"] - before["devices"]) * 1e6 / published if published else None,
        "broker": broker or "mosquitto (started here)",
        "page_busy_percent": page_busy,  # the fleet page's main thread, with --page
    }


def tail(path):
    try:
        with open(path, "rb") as f:
            return f.read()[-2000:].decode("utf-8", "replace")
    except OSError:
        return ""


def report(r):
    def pct(value):
        return "not measured" if value is None else "%.1f %%" % value

    def us(value):
        return "not measured" if value is None else "%.1f us" % value

    lat = r["latency_ms"]
    lines = [
        "%d devices at %g samples/s (%d processes) -> %s -> %d subscribers (%d processes), %.1f s"
        % (r["devices"], r["rate"], r["device_processes"], r["broker"], r["subscribers"],
           r["subscriber_processes"], r["seconds"]),
        "published  %8.1f samples/s (offered %g)" % (r["published_per_s"], r["offered_per_s"]),
        "received   %8.1f messages/s by all subscribers (%d messages, %d device streams)"
        % (r["received_per_s"], r["received"], r["streams"]),
        "latency    p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d samples with ts)"
        % (lat["p50"] or 0, lat["p99"] or 0, lat["max"] or 0, lat["n"]) if lat["n"] else "latency    not measured (no ts)",
        "loss       %d of %d (%.3f %%), %d out of order"
        % (r["missing"], r["expected"], 100.0 * (r["loss"] or 0), r["out_of_order"]),
        "CPU        broker %s, devices %s, subscribers %s (of one core)"
        % (pct(r["cpu_percent"]["broker"]), pct(r["cpu_percent"]["devices"]), pct(r["cpu_percent"]["subscribers"])),
        "per message  broker %s per delivery, devices %s per published sample"
        % (us(r["broker_us_per_delivery"]), us(r["device_us_per_sample"])),
    ]
    if r["page_busy_percent"] is not None:
        lines.append("fleet page main thread busy %.1f %% (Chromium, one page, %d cards)"
                     % (r["page_busy_percent"], r["devices"]))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description="N simulated devices through an MQTT broker to M subscribers.")
    parser.add_argument("--devices", type=int, default=100, help="simulated devices (default 100)")
    parser.add_argument("--rate", type=float, default=2.0, help="samples per second per device (default 2)")
    parser.add_argument("--subscribers", type=int, default=10, help="subscribers to <root>/+/samples (default 10)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the measured window (default 20)")
    parser.add_argument("--device-processes", type=int, default=2,
                        help="simulator processes the devices are shared among (default 2)")
    parser.add_argument("--subscriber-processes", type=int, default=2,
                        help="processes the subscribers are shared among (default 2)")
    parser.add_argument("--broker", help="HOST:PORT of a running broker (default: start mosquitto; "
                                         "then the broker's CPU is not measured)")
    parser.add_argument("--page", action="store_true",
                        help="also open the fleet page (tools/fleet.py) in headless Chromium and report how busy "
                             "its main thread is (needs playwright and /usr/bin/chromium)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    if args.page and args.broker:
        parser.error("--page needs the broker started here (its WebSocket listener)")
    if args.devices < 1 or args.subscribers < 1 or args.rate <= 0 or args.seconds <= 0:
        parser.error("devices, subscribers, rate and seconds must be positive")
    result = run(args.devices, args.rate, args.subscribers, args.seconds, args.device_processes,
                 args.subscriber_processes, args.broker, args.page)
    print(json.dumps(result) if args.json else report(result))


if __name__ == "__main__":
    main()
