"""Run the device on this computer: the firmware's App with simulated sensors.

    python3 tools/simulate.py [--host 127.0.0.1] [--port 8080] [--rate 2]
                              [--seed 1] [--token SECRET] [--board host]
                              [--cert cert.pem [--key key.pem]]

Then open the printed URL. The LED prints `LED on` / `LED off` here. Ctrl-C
(or SIGTERM) stops it; every dashboard then gets a close 1001 and starts
reconnecting. The board file comes from boards/ (host by default: other
boards' hardware sensors have nothing to read on a laptop).
"""

import argparse
import asyncio
import os
import signal
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for folder in (os.path.join(ROOT, "lib"), os.path.join(ROOT, "firmware"), os.path.join(ROOT, "tools")):
    if folder not in sys.path:
        sys.path.insert(0, folder)

import build_www  # noqa: E402
from app import App  # noqa: E402
from boardfile import load_board  # noqa: E402
from config import ConfigError, parse_config, redacted  # noqa: E402
from hardware import hardware  # noqa: E402
from microws.compat import ticks_diff, ticks_ms  # noqa: E402

WWW = os.path.join(ROOT, "firmware", "www")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Simulate a microws device with its dashboard.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: the whole network)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--board", default="host", help="board file in boards/ (default host)")
    parser.add_argument("--rate", type=float, help="samples per second (default: the board's)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated readings")
    parser.add_argument("--name", default="simulated", help="device name")
    parser.add_argument("--token", default="", help="commands only from pages opened with ?token=TOKEN")
    parser.add_argument("--cert", help="serve https:// and wss:// with this certificate (PEM)")
    parser.add_argument("--key", help="the certificate's private key (PEM; default: in --cert)")
    return parser.parse_args(argv)


def make_app(args, log=print):
    board = load_board(args.board, os.path.join(ROOT, "boards"))
    data = {"board": board["name"], "device_name": args.name, "port": args.port, "token": args.token}
    if args.rate is not None:
        data["rate"] = args.rate
    config = parse_config(data, board, "options")
    log("microws: config", redacted(config))
    started = ticks_ms()

    def since_start():  # a board's ticks_ms counts from its boot
        return ticks_diff(ticks_ms(), started)

    return App(board, config, hardware(seed=args.seed, clock=since_start), www=WWW, log=log)


async def serve(args):
    build_www.build(WWW)  # the page's .gz is never stale
    app = make_app(args)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stopped.set)
        except (NotImplementedError, RuntimeError):  # Windows
            pass
    context = None
    if args.cert:
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    await app.start(args.host, args.port, context)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "") else args.host
    suffix = "/?token=<your token>" if args.token else "/"  # the token itself is never printed
    scheme = "https" if context else "http"
    print("microws: simulated device %r, open %s://%s:%d%s" % (args.name, scheme, shown, app.server.port, suffix),
          flush=True)
    try:
        await stopped.wait()
    finally:
        await app.stop()
        print("microws: stopped", flush=True)


def main(argv=None):
    args = parse_args(argv)
    try:
        asyncio.run(serve(args))
    except ConfigError as error:
        sys.exit("microws: " + str(error))
    except OSError as error:
        sys.exit("microws: cannot listen on %s:%d: %s" % (args.host, args.port, error.strerror or error))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
