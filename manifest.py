# Freeze microws (and the device firmware) into your own MicroPython build.
# Frozen code runs from flash: no .py or .mpy files to copy, and less heap
# used than importing from the filesystem (important on the ESP8266).
#
# This manifest is port-agnostic: include it from one that keeps the port's
# own modules (asyncio above all), e.g. for the ESP8266:
#
#     include("$(BOARD_DIR)/manifest_2MiB.py")
#     include("/path/to/microws/manifest.py")
#
# then  make -C ports/esp8266 BOARD=ESP8266_GENERIC FROZEN_MANIFEST=/path/to/that.py
# (README.md, section "Freezing into your own firmware (ESP8266)", has the
# steps). Paths here are relative to this file.

# The library: lib/microws/ -> import microws
package("microws", base_path="lib")

# The device firmware: firmware/*.py are top-level modules on the board.
# boot.py and main.py are not frozen: they stay files on the flash, the
# entry points a user edits (tools/deploy.py still copies them, with
# config.json, boards/NAME.json and www/index.html.gz).
for name in ("access", "app", "boardfile", "checks", "config", "device", "hardware", "outputs", "uptime", "wifi",
             "mqtt", "mqtt_config", "uplink", "extend", "history", "wallclock", "sensor_kinds", "wifi_join", "token_guard", "output_kinds"):
    module(name + ".py", base_path="firmware")
package("sensors", base_path="firmware")
