"""Put firmware/ (the modules a board runs from its root) and this folder
(the fakes) on sys.path for the firmware tests."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIRMWARE = os.path.join(os.path.dirname(os.path.dirname(HERE)), "firmware")
for path in (HERE, FIRMWARE):
    if path not in sys.path:
        sys.path.insert(0, path)
