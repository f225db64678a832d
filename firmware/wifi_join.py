"""The first join at boot: the configured network, else the access point.

Blocking, and run once by main.py before the server starts; then dropped
(app.STARTUP_MODULES), so its code costs no heap while the device serves.
wifi.Keeper keeps the link afterwards.
"""

from wifi import POLL_MS, _hopeless, _status_text, device_name, start_ap, url


def join(config, network, sleep_ms, ticks_ms, ticks_diff, timeout_ms, log=print):
    """Join config's network as a station; the WLAN when connected, None
    when it failed (wrong password at once, anything else at timeout: a
    router that is still booting gets the whole timeout)."""
    ssid = config.get("wifi_ssid") or ""
    if not ssid:
        log("wifi: no wifi_ssid in config.json")
        return None
    if config.get("device_name") and hasattr(network, "hostname"):
        try:  # before the interface is up, so DHCP announces it
            network.hostname(config["device_name"])
        except Exception:  # noqa: BLE001 (a nicety; older firmware lacks it)
            pass
    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    if sta.isconnected():  # still joined from before a soft reset
        try:
            if sta.config("essid") == ssid:
                return sta
        except Exception:  # noqa: BLE001 (then join again)
            pass
        sta.disconnect()
    log("wifi: joining %r ..." % ssid)
    try:
        sta.connect(ssid, config.get("wifi_password") or "")
    except OSError as e:  # e.g. ESP32 "Wifi Internal State Error"
        log("wifi: could not join %r: %s" % (ssid, e))
        sta.active(False)
        return None
    start = ticks_ms()
    while not sta.isconnected():
        status = sta.status()
        if _hopeless(network, status):
            log("wifi: could not join %r: %s" % (ssid, _status_text(network, status)))
            break
        if ticks_diff(ticks_ms(), start) >= timeout_ms:
            log("wifi: could not join %r within %d s (%s)"
                % (ssid, timeout_ms // 1000, _status_text(network, status)))
            break
        sleep_ms(POLL_MS)
    else:
        return sta
    try:  # stop retrying in the background: it disturbs the access point
        sta.disconnect()
    except Exception:  # noqa: BLE001
        pass
    sta.active(False)
    return None


def connect(config, network, sleep_ms, ticks_ms, ticks_diff, timeout_ms=15000, log=print):
    """Station mode if possible, access point otherwise: (mode, ip) with
    mode "station" or "ap". Prints progress and the URL to open."""
    sta = join(config, network, sleep_ms, ticks_ms, ticks_diff, timeout_ms, log)
    if sta is not None:
        try:  # the ESP8266 keeps its AP on from earlier runs
            network.WLAN(network.AP_IF).active(False)
        except Exception:  # noqa: BLE001
            pass
        ip = sta.ifconfig()[0]
        log("wifi: connected to %r, address %s" % (config["wifi_ssid"], ip))
        log("open " + url(ip, config.get("port", 80)) + " in a browser")
        return "station", ip
    ap = start_ap(config, network, log)
    ip = ap.ifconfig()[0]
    name = device_name(config, network.WLAN(network.STA_IF))
    log("join the Wi-Fi network %r, then open %s in a browser" % (name, url(ip, config.get("port", 80))))
    return "ap", ip
