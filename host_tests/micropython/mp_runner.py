"""Runs one test file inside MicroPython and reports each test on stdout.

runner.mjs loads this into a fresh interpreter per test file and awaits
run_file(). Each test ends with one line `@@MPTEST {json}` that
host_tests/test_micropython.py parses; anything the tests print passes
through untouched. This file runs only on MicroPython.
"""
import io
import json
import sys
import time

import asyncio
import micropython

MARK = "@@MPTEST "
# An async test whose await never completes fails after this, instead of
# ending the whole Node process with nothing reported.
ASYNC_TIMEOUT_S = 60
_GENERATOR = type((lambda: (yield))())  # MicroPython coroutines are generators


def find_tests(path):
    """Top-level test_* functions in source order (MicroPython's dir() order
    is not source order, so read the file text)."""
    names = []
    with open(path) as f:
        for line in f:
            if line.startswith("async def "):
                line = line[6:]
            if line.startswith("def test_"):
                name = line[4:].split("(")[0].strip()
                if name not in names:
                    names.append(name)
    return names


def unlock_heap():
    """Undo heap_lock() left behind by a test that failed while locked, and
    return how many levels were still locked.

    heap_unlock() at depth 0 underflows the lock counter, so learn the depth
    first: a lock/unlock pair returns it without allocating.
    """
    micropython.heap_lock()
    depth = micropython.heap_unlock()
    for _ in range(depth):
        micropython.heap_unlock()
    return depth


def report(label, test, exc=None, note=""):
    record = {"file": label, "test": test, "ok": exc is None}
    if exc is not None:
        buf = io.StringIO()
        sys.print_exception(exc, buf)
        record["error"] = buf.getvalue() + note
    print(MARK + json.dumps(record))


def locked_note(depth):
    if not depth:
        return ""
    # No traceback can be built while the heap is locked.
    return "(raised while micropython.heap_lock() was active: the code allocated)\n"


async def run_async(coro):
    """Await an async test; one that hangs fails instead of stalling the run."""
    start = time.ticks_ms()
    try:
        await asyncio.wait_for(coro, ASYNC_TIMEOUT_S)
    except asyncio.TimeoutError:
        if time.ticks_diff(time.ticks_ms(), start) < ASYNC_TIMEOUT_S * 1000:
            raise  # the test's own timeout
        raise AssertionError("async test did not finish within %d s" % ASYNC_TIMEOUT_S)


async def run_file(path, label):
    """Import the module at `path` (its folder is on sys.path), run its tests
    and return how many failed. An import failure is reported as `<import>`."""
    try:
        module = __import__(path.rsplit("/", 1)[-1][:-3])
    except BaseException as exc:
        report(label, "<import>", exc, locked_note(unlock_heap()))
        return 1
    failures = 0
    for name in find_tests(path):
        error = None
        try:
            result = getattr(module, name)()
            if type(result) is _GENERATOR:  # async def test_...
                await run_async(result)
        except BaseException as exc:
            error = exc
        note = locked_note(unlock_heap())
        if error is not None:
            failures += 1
        report(label, name, error, note)
    return failures
