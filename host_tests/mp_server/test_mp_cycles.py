"""Thousands of connect/echo/close cycles against the server under MicroPython
in a small fixed heap: every cycle succeeds, and the server's heap after
gc.collect() ends where it was after the first 100 cycles.

MICROWS_CYCLES sets the count (10000 by default), as for the CPython cycle
test in host_tests/hostile/test_cycles_and_tls.py.
"""

import os
import time

from mpclient import RawClient

CYCLES = int(os.environ.get("MICROWS_CYCLES", "10000"))
WARMUP = 100
# 128 KB: the 64-bit unix port needs about 74 KB for the interpreter, asyncio,
# microws (.mpy) and serve.py before the first client; 4 clients of 1024 B
# messages fit beside that. (64 KB does not even hold the import here.)
HEAP = "128k"
HEAP_MARGIN = 1024  # bytes: what a conservative collector may keep by chance


def one_cycle(port, n):
    client = RawClient.upgrade(port)
    try:
        client.echo("cycle %d" % n)
        client.close_handshake(1000)
    finally:
        client.close()


def test_ten_thousand_cycles_leave_the_heap_as_it_was(mp_server, mpy_lib):
    server = mp_server(heap=HEAP, lib=mpy_lib, max_clients=4, max_size=1024, quiet=1)
    failures = []
    start = time.monotonic()
    for n in range(WARMUP):
        one_cycle(server.port, n)
    before = server.heap_alloc()
    done = 0
    for n in range(CYCLES):
        try:
            one_cycle(server.port, n)
            done += 1
        except (AssertionError, OSError) as error:
            failures.append((n, repr(error)))
            if len(failures) >= 5 or not server.alive():
                break
    elapsed = time.monotonic() - start
    server.assert_alive()
    assert not failures, "%d of %d cycles done, then failures: %r\n%s" % (done, CYCLES, failures, server.log())
    after = server.heap_alloc()
    print("%d cycles in %.1f s (%.2f ms each); heap after gc.collect(): %d B after %d cycles, %d B at the end"
          " (%+d B)" % (CYCLES, elapsed, 1000 * elapsed / (CYCLES + WARMUP), before, WARMUP, after, after - before))
    assert after - before <= HEAP_MARGIN, (
        "the heap grew by %d B over %d cycles (%d -> %d)" % (after - before, CYCLES, before, after))
