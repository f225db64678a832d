"""The history ring and its `h` chunks: order, wrap, the same numbers as the
stream, bounded chunks, and the Device and App around them."""
import asyncio
import json
import os

import pytest
import websockets

from app import App
from boardfile import load_board
from config import parse_config
from device import Device, sample_text
from fakes import Clock
from hardware import hardware
from history import CHUNK_BYTES, DONE, History, HistorySender
from sensors.base import Sensor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOST = load_board("host", os.path.join(ROOT, "boards"))


def texts(sender, wall_at=lambda ms: None):
    return [c if isinstance(c, str) else bytes(c).decode() for c in sender.chunks(wall_at)]


def rows_of(chunks):
    rows = []
    for text in chunks:
        message = json.loads(text)
        assert message["t"] == "h"
        rows += message["rows"]
    return rows


def test_an_empty_ring_sends_only_done():
    sender = HistorySender(History(10, 2), [1, 1])
    assert texts(sender) == [DONE]
    assert json.loads(DONE) == {"t": "h", "rows": [], "done": True}


def test_the_ring_keeps_the_newest_in_order_across_the_wrap():
    ring = History(5, 2)
    for seq in range(12):
        ring.push(seq, 1000 + 500 * seq, [seq + 0.5, None if seq % 3 == 0 else -seq])
    assert ring.size == 5 and ring.oldest_seq() == 7 and ring.newest_seq == 11
    rows = rows_of(texts(HistorySender(ring, [1, None])))
    assert [r[0] for r in rows] == [7, 8, 9, 10, 11]
    assert [r[1] for r in rows] == [1000 + 500 * s for s in range(7, 12)]
    assert [r[3] for r in rows] == [[7.5, -7], [8.5, -8], [9.5, None], [10.5, -10], [11.5, -11]]
    assert all(r[2] is None for r in rows)  # no clock: ts is null


def test_a_gap_in_seq_starts_the_ring_over():
    ring = History(5, 1)
    ring.push(0, 0, [1])
    ring.push(1, 1, [2])
    ring.push(5, 5, [3])  # the device's seq only counts up by one: anything else is a fresh start
    assert ring.size == 1 and ring.oldest_seq() == 5


def test_capacity_zero_keeps_nothing():
    ring = History(0, 3)
    ring.push(0, 0, [1, 2, 3])
    assert ring.size == 0 and ring.nbytes() == 0
    assert texts(HistorySender(ring, [None] * 3)) == [DONE]


def test_stored_float32_values_come_back_as_the_stream_sent_them():
    decimals = [2, 1, None, None, None]
    values = [21.53, -3.3, 6201386, 0.1234567, 1e-7]
    ring = History(3, 5)
    ring.push(0, 0, values)
    (row,) = rows_of(texts(HistorySender(ring, decimals)))
    assert row[3][:3] == [21.53, -3.3, 6201386]  # exact: decimals, or whole numbers under 2**24
    assert row[3][3] == pytest.approx(0.1234567, rel=1e-7) and row[3][4] == pytest.approx(1e-7, rel=1e-6)


def test_chunks_stay_within_a_kilobyte_and_hold_every_row_once():
    ring = History(1000, 6)
    for seq in range(1000):
        ring.push(seq, seq * 500, [21.53, 45.2, 1013.25, 99.9, 6201386, seq])
    chunks = texts(HistorySender(ring, [2, 1, 2, 1, None, None]), lambda ms: 1764590000000 + ms)
    assert chunks[-1] == DONE and len(chunks) > 40
    assert all(len(c.encode()) <= CHUNK_BYTES for c in chunks)
    rows = rows_of(chunks)
    assert [r[0] for r in rows] == list(range(1000))
    assert all(r[2] == 1764590000000 + r[1] for r in rows)


def test_rows_overwritten_while_a_chunk_is_out_are_skipped_not_repeated():
    ring = History(200, 1)
    for seq in range(200):
        ring.push(seq, seq, [seq])
    sender = HistorySender(ring, [None])
    chunks = sender.chunks(lambda ms: None)
    first = json.loads(bytes(next(chunks)).decode())["rows"]
    assert 0 < len(first) < 150
    for seq in range(200, 350):  # the sampler goes on while the first chunk is sent
        ring.push(seq, seq, [seq])
    rest = rows_of(c if isinstance(c, str) else bytes(c).decode() for c in chunks)
    seqs = [r[0] for r in first + rest]
    assert seqs == sorted(set(seqs))  # in order, none twice
    assert seqs[-1] == 349  # up to the newest: what was sampled meanwhile too
    assert rest[0][0] == 150  # the oldest the ring then held
    assert [r[0] for r in rest] == list(range(150, 350))
    assert all(r[3] == [r[0]] for r in rest)


def test_join_comes_after_every_row_sampled_meanwhile_and_right_before_done():
    ring = History(200, 1)
    for seq in range(100):
        ring.push(seq, seq, [seq])
    events = []
    sender = HistorySender(ring, [None])
    for chunk in sender.chunks(lambda ms: None, lambda: events.append(("join", ring.newest_seq))):
        if isinstance(chunk, str):
            events.append(("done",))
            break
        rows = json.loads(bytes(chunk).decode())["rows"]
        events.append(("rows", rows[0][0], rows[-1][0]))
        if ring.newest_seq < 130:  # sampled while this chunk was out
            seq = ring.newest_seq + 1
            ring.push(seq, seq, [seq])
    assert events[-2:] == [("join", 130), ("done",)]
    assert events[-3][0] == "rows" and events[-3][2] == 130  # the history reached the newest before the join
    seqs = [n for e in events if e[0] == "rows" for n in range(e[1], e[2] + 1)]
    assert seqs == list(range(131))


def test_an_empty_history_joins_at_once():
    joined = []
    chunks = list(HistorySender(History(10, 1), [None]).chunks(lambda ms: None, lambda: joined.append(1)))
    assert chunks == [DONE] and joined == [1]


class Counting(Sensor):
    def __init__(self, name, decimals=None):
        Sensor.__init__(self, name, "", decimals)
        self.n = 0

    def _read(self):
        self.n += 1
        return self.n * 1.25


def test_device_rows_match_its_samples_and_get_ts_once_the_clock_is_known():
    clock = Clock(1000)
    board = dict(HOST, history=4)
    device = Device(board, {"rate": 2}, [Counting("a", 2), Counting("b")], [], clock)
    sent = []
    for _ in range(6):
        sent.append(json.loads(sample_text(device.read())))
        clock.advance(500)
    assert all("ts" not in s for s in sent)  # clock unknown: no ts
    rows = rows_of(texts(device.history_sender, device.wall_at))
    assert [[r[0], r[1], r[3]] for r in rows] == [[s["seq"], s["ms"], s["v"]] for s in sent[2:]]
    assert all(r[2] is None for r in rows)
    device.handle_command('{"cmd":"time","ms":1764590000000}')  # at clock 4000
    rows = rows_of(texts(device.history_sender, device.wall_at))
    assert [r[2] for r in rows] == [1764590000000 - (4000 - r[1]) for r in rows]
    assert json.loads(device.hello())["history"] == 4


def test_a_dashboard_gets_hello_then_history_then_the_stream():
    async def body():
        board = dict(HOST, history=50)
        config = parse_config({"board": "host", "rate": 20}, board, "test")
        app = App(board, config, hardware(seed=2), www=os.path.join(ROOT, "firmware", "www"), log=lambda *a: None)
        for _ in range(30):  # sampled with no dashboard open
            app.sample_once()
        assert app.device.history.size == 30
        await app.start("127.0.0.1", 0)
        try:
            async with websockets.connect("ws://127.0.0.1:%d/ws" % app.server.port) as ws:
                hello = json.loads(await ws.recv())
                assert hello["t"] == "hello" and hello["history"] == 50 and hello["clock"] is True
                rows, live = [], []
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    if message["t"] == "s":
                        live.append(message)
                    elif message.get("done"):
                        break
                    else:
                        rows += message["rows"]
                assert [r[0] for r in rows][:30] == list(range(30))
                assert live == []  # the live stream starts after the history, never inside it
                while len(live) < 2:
                    live.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
                assert [s["seq"] for s in live] == list(range(rows[-1][0] + 1, rows[-1][0] + 3))
                assert "ts" in live[-1]
        finally:
            await app.stop()

    asyncio.run(asyncio.wait_for(body(), 30))


def test_samples_taken_while_the_history_is_sent_come_as_rows_not_before_them():
    # The sampler runs while a chunk is out (a loaded machine, a slow client):
    # those samples belong in the history, and no live sample may overtake it.
    async def body():
        board = dict(HOST, history=50)
        config = parse_config({"board": "host", "rate": 1}, board, "test")
        app = App(board, config, hardware(seed=2), www=os.path.join(ROOT, "firmware", "www"), log=lambda *a: None)
        for _ in range(40):
            app.sample_once()
        sender = app.device.history_sender
        real = sender.chunks
        sampled = []

        def chunks(*args):
            for chunk in real(*args):
                yield chunk
                if len(sampled) < 3:  # once per chunk, for the first three
                    sampled.append(app.sample_once()[0])

        sender.chunks = chunks
        await app.start("127.0.0.1", 0)
        try:
            async with websockets.connect("ws://127.0.0.1:%d/ws" % app.server.port) as ws:
                assert json.loads(await ws.recv())["t"] == "hello"
                order, live = [], []
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    if message["t"] == "s":
                        live.append(message["seq"])
                        order.append(message["seq"])
                    elif message.get("done"):
                        break
                    else:
                        order += [r[0] for r in message["rows"]]
                assert len(sampled) == 3 and live == []  # no live sample before the history's done
                newest = app.device.history.newest_seq
                assert order == list(range(newest + 1)) and set(sampled) <= set(order)
                after = json.loads(await asyncio.wait_for(ws.recv(), 5))  # the stream goes on from there
                assert after["t"] == "s" and after["seq"] == order[-1] + 1
        finally:
            await app.stop()

    asyncio.run(asyncio.wait_for(body(), 30))


def test_the_device_samples_with_no_dashboard_open():
    async def body():
        config = parse_config({"board": "host", "rate": 20}, HOST, "test")
        app = App(HOST, config, hardware(seed=2), www=os.path.join(ROOT, "firmware", "www"), log=lambda *a: None)
        await app.start("127.0.0.1", 0)
        try:
            await asyncio.sleep(0.5)
            assert app.clients() == 0
            assert 5 <= app.device.history.size <= 15  # 20 Hz, loosely
            assert app.device.history.newest_seq == app.device.seq - 1
        finally:
            await app.stop()

    asyncio.run(asyncio.wait_for(body(), 10))


def test_a_client_slower_than_the_sampler_gets_at_most_two_rings_of_history():
    ring = History(50, 1)
    for seq in range(50):
        ring.push(seq, seq, [seq])
    seqs = []
    for chunk in HistorySender(ring, [None]).chunks(lambda ms: None):
        if isinstance(chunk, str):
            break
        seqs += [r[0] for r in json.loads(bytes(chunk).decode())["rows"]]
        for _ in range(40):  # more is sampled than one chunk holds
            seq = ring.newest_seq + 1
            ring.push(seq, seq, [seq])
    assert seqs == sorted(set(seqs)) and seqs[-1] == 99  # caught up no further than one ring's worth
