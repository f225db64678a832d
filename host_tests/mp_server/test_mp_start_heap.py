"""The heap a server starts in, under MicroPython: garbage left between live
objects must not cost clients.

MicroPython's heap never moves an object. A program that starts a server has
made garbage first (its imports, its configuration), and the collector runs
only when an allocation fails. If start() made its slots then, they would
land in the long free run at the end of the heap, and the holes freed after
them would be too short for a connection's working memory: fewer clients
would fit than in the same heap collected. Server() and start() collect
first, so both heaps take the same max_clients.
"""

import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "start_in_garbage.py")
HEAP = "160k"
MOST = 40


def starts(micropython, mpy_lib, mode, max_clients, pairs):
    env = dict(os.environ, MICROPYPATH=".frozen:" + mpy_lib)  # asyncio frozen in, microws as .mpy
    done = subprocess.run([micropython, "-X", "heapsize=" + HEAP, SCRIPT, mode, str(max_clients), str(pairs)],
                          capture_output=True, text=True, timeout=30, env=env)
    last = (done.stdout.strip().splitlines() or [""])[-1]
    if last == "started":
        return True
    assert last.startswith("refused no heap for"), "neither started nor refused for heap:\n%s%s" % (
        done.stdout, done.stderr)
    return False


def most_that_start(micropython, mpy_lib, mode, pairs):
    best, failed = 0, MOST + 1
    while failed - best > 1:
        middle = (best + failed) // 2
        if starts(micropython, mpy_lib, mode, middle, pairs):
            best = middle
        else:
            failed = middle
    return best


@pytest.mark.parametrize("pairs", [50, 100, 150])
def test_garbage_before_start_costs_no_client(micropython, mpy_lib, pairs):
    clean = most_that_start(micropython, mpy_lib, "clean", pairs)
    assert 1 <= clean < MOST, "the heap should take some clients, not all: %d" % clean
    assert starts(micropython, mpy_lib, "garbage", clean, pairs), (
        "%d clients start in a collected %s heap, but not after %d holes of garbage" % (clean, HEAP, pairs))
