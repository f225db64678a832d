"""Put tools/ (the deploy tool) and firmware/ (config.py, which the tool
checks the config with) on sys.path for the tools tests."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for path in (os.path.join(ROOT, "firmware"), os.path.join(ROOT, "tools")):
    if path not in sys.path:
        sys.path.insert(0, path)
