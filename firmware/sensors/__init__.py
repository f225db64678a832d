"""The sensor drivers and classes. The kinds a board file may list, and the
factory that builds them, are in sensor_kinds.py (needed only to start)."""
