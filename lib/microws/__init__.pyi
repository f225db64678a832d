# What type checkers see of microws/__init__.py, whose names are loaded lazily.
from .connection import ConnectionClosed as ConnectionClosed
from .handshake import HTTPError as HTTPError
from .handshake import Request as Request
from .http import Response as Response
from .server import Group as Group
from .server import Message as Message
from .server import Server as Server
from .server import WebSocket as WebSocket

__version__: str
