"""Start the device: config, Wi-Fi (or an access point), then serve the
dashboard and the stream until the board resets.

Files on the board (tools/deploy.py puts them there):
    /config.json            written by the deploy tool (holds secrets)
    /boards/NAME.json       this board's description
    /lib/microws/           the library
    /www/index.html.gz      the dashboard
    /*.py, /sensors/        this folder
    /custom.py              yours, if you have one: sensors, commands, routes (extend.py)
"""

import gc
import time


def load_custom():
    """The user's custom.py, if there is one, before the board file (which
    may name its sensors); a failure is logged and the device starts
    without it. Without one, extend.py is not even imported."""
    import os

    for path in ("custom.py", "custom.mpy"):  # tools/deploy.py --custom copies a .mpy
        try:
            os.stat(path)
        except OSError:
            continue
        import extend

        extend.load(path)
        return


def main():
    load_custom()
    from config import ConfigError, load_config, redacted

    try:
        config = load_config("config.json", "boards")
    except ConfigError as error:
        print("microws: cannot start:", error)
        return
    from boardfile import load_board

    board = load_board(config["board"], "boards")
    print("microws: config", redacted(config))
    del ConfigError, load_config, redacted, load_board  # see drop_startup_modules
    import network

    import wifi
    import wifi_join

    mode, _ = wifi_join.connect(config, network, time.sleep_ms, time.ticks_ms, time.ticks_diff)
    del wifi_join  # see drop_startup_modules
    # from now on in the background: retry the network while on the access
    # point, rejoin when the link drops (the server keeps running meanwhile)
    keeper = wifi.Keeper(config, network, time.ticks_ms, time.ticks_diff, mode)
    gc.collect()
    from app import App, drop_startup_modules
    from hardware import hardware
    from microws.compat import asyncio

    app = App(board, config, hardware(), www="www", wifi=keeper)
    del board  # the parsed board file (about 5 KB on a 32-bit board): the App took what it needs
    drop_startup_modules()
    gc.collect()
    print("microws: serving on port %d, %d bytes free" % (config["port"], gc.mem_free()))
    asyncio.run(app.serve("0.0.0.0", config["port"]))


main()
