# Runs first on every reset: quiet the ESP8266's debug output and free what
# boot left behind, so main.py starts with the most heap it can have.
import gc

try:
    import esp

    esp.osdebug(None)
except (ImportError, AttributeError):
    pass
gc.collect()
