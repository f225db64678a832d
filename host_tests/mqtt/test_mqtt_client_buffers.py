"""The client reuses one out buffer; what it hands the transport must not
change afterwards. CPython 3.12's socket transport keeps a view of unsent
data (3.11 copied it), so a reused buffer would rewrite packets already
queued and corrupt the stream to the broker."""

import asyncio

from mqtt import Client


class KeepingWriter:
    """A writer whose transport sends nothing and keeps what it was given,
    as CPython 3.12's _SelectorSocketTransport does with a full socket."""

    def __init__(self):
        self.kept = []
        self.transport = self

    def write(self, data):
        self.kept.append((data, bytes(data)))

    async def drain(self):
        pass

    def get_write_buffer_size(self):
        return sum(len(snapshot) for _, snapshot in self.kept)


def test_packets_handed_to_the_transport_stay_as_they_were_written():
    client = Client("t", lambda *a: None, lambda *a: None)
    writer = KeepingWriter()
    client._stream = (None, writer)
    client.send(b"a/samples", b'{"seq":1}')
    client.send(b"a/samples", b'{"seq":2}')
    asyncio.run(client.publish(b"a/info", b"x" * 40, retain=True))
    asyncio.run(client.subscribe(b"a/cmd"))
    assert len(writer.kept) == 4
    for data, snapshot in writer.kept:
        assert bytes(data) == snapshot, "a queued packet changed after it was written"
