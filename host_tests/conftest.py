"""Put the library and the repository root on sys.path for every test."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (os.path.join(ROOT, "lib"), ROOT):
    if path not in sys.path:
        sys.path.insert(0, path)
