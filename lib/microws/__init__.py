"""microws: a WebSocket server for MicroPython boards, and CPython.

The protocol core (handshake, frames, utf8, connection) is sans-I/O; the
asyncio server sits on top of it.

    from microws import Server

The public names (Server, WebSocket, Message, Group, ConnectionClosed,
HTTPError, Request, Response) are loaded on first use by the module-level
__getattr__ below (PEP 562): `import microws` alone loads no other module.
MicroPython has module __getattr__ on the ports built at the CORE_FEATURES
level or above (MICROPY_MODULE_GETATTR: unix, ESP32, ESP8266, RP2,
WebAssembly); on a port without it, import from the submodule instead:
`from microws.server import Server`. Type checkers read __init__.pyi.
"""

__version__ = "0.1.0"

_NAMES = {"Server": "server", "WebSocket": "server", "Message": "server", "Group": "server",
          "ConnectionClosed": "connection", "HTTPError": "handshake", "Request": "handshake",
          "Response": "http"}


def __getattr__(name):
    where = _NAMES.get(name, name)  # else a submodule: MicroPython's `from microws import compat` asks here
    module = "microws." + where
    try:
        __import__(module)
    except ImportError as error:
        if where != name or module not in str(error):
            raise
        raise AttributeError("module 'microws' has no attribute '%s'" % name)
    import sys
    value = sys.modules[module]
    if where != name:
        value = getattr(value, name)
        globals()[name] = value  # found directly from now on
    return value
