"""Type checks that agree on CPython and MicroPython.

JSON true/false must not pass for numbers: on CPython bool is a subclass of
int, on MicroPython it is not, so compare exact types instead of isinstance.
"""

NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"


def is_int(x):
    return type(x) is int


def is_number(x):
    return (type(x) is int or type(x) is float) and x - x == 0  # finite


def is_bool(x):
    return type(x) is bool


def is_str(x):
    return type(x) is str


def is_name(x, max_len=32):
    """A short identifier: letters, digits, '_' and '-' (safe in JSON, URLs,
    host names and file names)."""
    if type(x) is not str or not 0 < len(x) <= max_len:
        return False
    for c in x:
        if c not in NAME_CHARS:
            return False
    return True


def fmt(x):
    """A number as people write it: 20 rather than 20.0, 0.1 as 0.1."""
    if type(x) is float and x == int(x):
        return str(int(x))
    return str(x)


def default_label(name):
    """free_heap -> "Free heap": what the page shows when a spec gives no label."""
    text = name.replace("_", " ")
    return text[:1].upper() + text[1:]
