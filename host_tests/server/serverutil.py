"""Running a Server inside a test."""

import asyncio
import contextlib


@contextlib.asynccontextmanager
async def running(server):
    """Start a Server on a free loopback port; stop it afterwards."""
    await server.start("127.0.0.1", 0)
    try:
        yield server.port
    finally:
        await server.stop()


def run(coroutine, timeout=60):
    """Run one async test body with an overall time limit."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))
