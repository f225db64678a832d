"""Get on the air: join the configured network, else open an access point.

A device that cannot join (no SSID yet, wrong password, router gone) must
still be reachable, so it falls back to an access point of its own and
prints the address to open. Passwords are never printed. The `network`
module and the clock functions are passed in (a fake in host tests).
"""

POLL_MS = 200
AP_PREFIX = "microws-"

# CYW43 (Pico W) has no security constants on older firmware: its own codes.
CYW43_OPEN = 0
CYW43_WPA2_AES_PSK = 0x00400004


def device_name(config, wlan):
    """config's device_name, or microws-XXXX from the last two bytes of the
    interface's MAC (stable per board, different between boards)."""
    if config.get("device_name"):
        return config["device_name"]
    try:
        mac = wlan.config("mac")
        return AP_PREFIX + "%02x%02x" % (mac[-2], mac[-1])
    except Exception:  # noqa: BLE001 (no MAC: still a usable name)
        return AP_PREFIX + "0000"


def url(ip, port=80):
    return "http://%s/" % ip if port == 80 else "http://%s:%d/" % (ip, port)


def _hopeless(network, status):
    """A station status that waiting will not fix: a wrong password. (No AP
    found or a failed attempt may be a router still booting: keep trying.)"""
    wrong = getattr(network, "STAT_WRONG_PASSWORD", None)
    return wrong is not None and status == wrong


def _status_text(network, status):
    for name in ("STAT_WRONG_PASSWORD", "STAT_NO_AP_FOUND", "STAT_CONNECT_FAIL", "STAT_IDLE",
                 "STAT_CONNECTING", "STAT_GOT_IP"):
        if getattr(network, name, None) == status:
            return name[5:].lower().replace("_", " ")
    return "status %s" % (status,)


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


def _security(network, password):
    """The AP security code for the running port (WLAN.SEC_* on recent
    firmware, network.AUTH_* on ESP ports, CYW43 codes otherwise)."""
    names = ("SEC_WPA2", "AUTH_WPA2_PSK") if password else ("SEC_OPEN", "AUTH_OPEN")
    for holder in (getattr(network, "WLAN", None), network):
        for name in names:
            value = getattr(holder, name, None)
            if value is not None:
                return value
    return CYW43_WPA2_AES_PSK if password else CYW43_OPEN


def start_ap(config, network, log=print):
    """Open the fallback access point; the WLAN."""
    ap = network.WLAN(network.AP_IF)
    ap.active(True)
    name = device_name(config, network.WLAN(network.STA_IF))
    password = config.get("ap_password") or ""
    security = _security(network, password)
    # The keyword names differ between ports and firmware versions: the
    # ESP ports' essid/password/authmode first, the names every port
    # accepts since 1.20 (ssid/key/security) next, then essid alone (early
    # Pico W firmware, which takes no security argument).
    attempts = [{"essid": name, "authmode": security}, {"ssid": name, "security": security}, {"essid": name}]
    if password:
        attempts[0]["password"] = password
        attempts[1]["key"] = password
        attempts[2]["password"] = password
    for i in range(len(attempts)):
        try:
            ap.config(**attempts[i])
            break
        except (ValueError, TypeError, OSError):
            if i == len(attempts) - 1:
                raise
    kind = "WPA2, password from ap_password" if password else "open, no password"
    log("wifi: access point %r started (%s)" % (name, kind))
    return ap


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
