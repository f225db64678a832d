"""Serve the fleet page: one page for every device that publishes to an MQTT broker.

    python3 tools/fleet.py --broker ws://HOST:PORT [--port 8090] [--host 127.0.0.1]
                           [--root microws]

Then open the printed URL. The page itself connects to the broker's
MQTT-over-WebSocket listener (the browser's own connection: --broker must be
an address the browser can reach) and subscribes to <root>/+/status, info,
samples and reply. This script only serves the files of tools/fleet/www/
(with the project's own server, lib/microws) and /config.json, which tells the
page the broker and the root; ?broker=... and ?root=... in the page's
address override them.

CPython only (argparse); needs nothing from PyPI. The page's script,
tools/fleet/www/fleet.js, is built by tools/build_fleet.py and committed.
"""

import argparse
import asyncio
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WWW = os.path.join(ROOT, "tools", "fleet", "www")
sys.path.insert(0, os.path.join(ROOT, "lib"))

from microws.server import Server  # noqa: E402


def broker_url(text):
    """The --broker value: a ws:// or wss:// URL (a browser speaks MQTT only over WebSocket)."""
    if not text.startswith(("ws://", "wss://")):
        raise argparse.ArgumentTypeError("must be ws://HOST:PORT or wss://HOST:PORT (the broker's WebSocket listener)")
    return text


def topic_root(text):
    text = text.strip("/")
    if not text or "+" in text or "#" in text:
        raise argparse.ArgumentTypeError("a topic level or levels without + or #, e.g. microws")
    return text


def make_server(broker, root):
    """The page's server: the static files and /config.json."""
    if not os.path.isfile(os.path.join(WWW, "fleet.js")):
        raise SystemExit("fleet.py: %s/fleet.js is missing: run python3 tools/build_fleet.py" % WWW)
    server = Server(max_clients=2, max_message_size=256)

    @server.route("/config.json")
    def config(request):
        return {"broker": broker, "root": root}

    server.static("/", WWW)
    return server


def main(argv=None):
    parser = argparse.ArgumentParser(description="Serve the microws fleet page.")
    parser.add_argument("--broker", required=True, type=broker_url,
                        help="the broker's MQTT-over-WebSocket address, e.g. ws://127.0.0.1:9001")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8090, help="port to listen on (default 8090)")
    parser.add_argument("--root", type=topic_root, default="microws",
                        help="the topic root the devices publish under (default microws)")
    args = parser.parse_args(argv)
    server = make_server(args.broker, args.root)
    try:
        asyncio.run(serve(server, args))
    except OSError as error:
        sys.exit("fleet.py: cannot listen on %s:%d: %s (another program has it? choose another with --port)"
                 % (args.host, args.port, error.strerror or error))
    except KeyboardInterrupt:
        pass


async def serve(server, args):
    """The address is printed once it is listened on, not before."""
    await server.start(args.host, args.port)
    print("fleet page on http://%s:%d/ (broker %s, topics %s/+/...)" % (args.host, args.port, args.broker, args.root),
          flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


if __name__ == "__main__":
    main()
