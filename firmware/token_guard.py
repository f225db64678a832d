"""Who may command the device: the token, and a limit on guessing it.

Imported only when config.json sets a token: a device without one does
not pay for it. The token is compared in constant time so that answer
timing tells a guesser nothing about how much of a guess was right.
"""

from microws.compat import ticks_diff


def token_matches(presented, token):
    """True when presented == token, in time that depends only on their lengths."""
    a = presented.encode() if isinstance(presented, str) else bytes(presented)
    b = token.encode() if isinstance(token, str) else bytes(token)
    diff = len(a) ^ len(b)
    for i in range(len(b)):
        diff |= (a[i] if i < len(a) else 0) ^ b[i]
    return diff == 0 and len(b) > 0


GUESSES = 5  # wrong tokens from one address ...
GUESS_WINDOW_MS = 60000  # ... within this long ...
LOCKOUT_MS = 300000  # ... and its token attempts are refused for this long
GUESS_SLOTS = 8  # addresses remembered at once (the oldest is forgotten)


class TokenGuard:
    """Wrong-token guesses per client address, in a small fixed table.

    check(address, presented) -> "ok", "none" (no token presented),
    "wrong" or "refused" (too many wrong guesses from that address lately:
    the token is not even compared). Memory is GUESS_SLOTS small lists,
    whatever the number of guessers; a table full of guessers forgets the
    one seen longest ago.
    """

    def __init__(self, token, clock, guesses=GUESSES, window_ms=GUESS_WINDOW_MS, lockout_ms=LOCKOUT_MS,
                 slots=GUESS_SLOTS):
        self.token = token
        self.guesses = guesses
        self.window_ms = window_ms
        self.lockout_ms = lockout_ms
        self._clock = clock
        self._slots = slots
        self._table = []  # [address, first wrong guess ms, wrong guesses, locked since ms or None]

    def _entry(self, address):
        for entry in self._table:
            if entry[0] == address:
                return entry
        return None

    def check(self, address, presented):
        if presented is None:
            return "none"
        now = self._clock()
        entry = self._entry(address)
        if entry is not None and entry[3] is not None:
            if ticks_diff(now, entry[3]) < self.lockout_ms:
                return "refused"
            self._table.remove(entry)  # the lockout is over: a clean slate
            entry = None
        if token_matches(presented, self.token):
            return "ok"
        if entry is None or ticks_diff(now, entry[1]) >= self.window_ms:
            if entry is not None:
                self._table.remove(entry)
            if len(self._table) >= self._slots:
                self._table.pop(0)
            entry = [address, now, 0, None]
            self._table.append(entry)
        entry[2] += 1
        if entry[2] >= self.guesses:
            entry[3] = now
        return "wrong"


def peer_address(peer):
    """The address part of a socket peer: CPython's and the ESP ports'
    (host, port) tuple, or the unix port's raw sockaddr bytes."""
    if peer is None:
        return None
    if type(peer) is tuple or type(peer) is list:
        return peer[0]
    try:
        data = bytes(peer)
    except TypeError:
        return str(peer)
    return data[4:8] if len(data) >= 8 else data
