"""Stay on the air: keep the configured network joined, else an access point.

A device that cannot join (no SSID yet, wrong password, router gone) must
still be reachable, so it falls back to an access point of its own and
prints the address to open. Passwords are never printed. The `network`
module and the clock functions are passed in (a fake in host tests). The
first, blocking join at boot is wifi_join.py's (dropped once started).
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


# ------------------------------------------------------------------ keeping the link

RETRY_FIRST_MS = 10000  # the first retry of the configured network, after falling back ...
RETRY_MAX_MS = 300000  # ... doubling up to this
ATTEMPT_MS = 15000  # one background attempt to join
WATCH_MS = 2000  # how often a joined link is looked at
LOST_ATTEMPTS = 3  # failed rejoins after a lost link before the access point opens


class Keeper:
    """Keeps the device on the configured network, without ever blocking:
    poll() does one step and returns the milliseconds to wait before the
    next (App runs it in a task beside the server).

    While the fallback access point is up it retries the configured network
    in the background with a capped backoff (RETRY_FIRST_MS doubling to
    RETRY_MAX_MS); once joined it switches the access point off. A joined
    link is watched; when it drops, it is rejoined at once, then with the
    same backoff, and after LOST_ATTEMPTS failures the access point opens
    again (still retrying). mode: what connect() gave, "station" or "ap".

    state: "joined", "lost" (was joined, rejoining) or "ap"; retries:
    attempts after the first join at boot; changed_ms: uptime (the
    `uptime` callable, ms since boot; the App gives it) at the last change.
    """

    def __init__(self, config, network, ticks_ms, ticks_diff, mode, log=print, uptime=None):
        self.config = config
        self.network = network
        self._ticks = ticks_ms
        self._diff = ticks_diff
        self.log = log
        self.uptime = uptime
        self.state = "joined" if mode == "station" else "ap"
        self.retries = 0
        self.changed_ms = self._uptime()
        self._attempt = None  # ticks when the running join attempt started
        self._failures = 0  # failed attempts in a row
        self._since = ticks_ms()  # start of the current wait
        self._wait = RETRY_FIRST_MS

    def _uptime(self):
        return self.uptime() if self.uptime is not None else 0

    def _set(self, state):
        if state != self.state:
            self.state = state
            self.changed_ms = self._uptime()

    def info(self):
        """For the `info` reply (firmware/PROTOCOL.md)."""
        return {"state": self.state, "trying": self._attempt is not None, "retries": self.retries,
                "changed_s": self.changed_ms // 1000}

    def poll(self):
        ssid = self.config.get("wifi_ssid") or ""
        if not ssid:
            return RETRY_MAX_MS  # nothing to join: the access point is all there is
        network = self.network
        now = self._ticks()
        sta = network.WLAN(network.STA_IF)
        if self._attempt is not None:
            if sta.isconnected():
                self._joined(sta, ssid)
                return WATCH_MS
            status = sta.status()
            if _hopeless(network, status) or self._diff(now, self._attempt) >= ATTEMPT_MS:
                self._failed(sta, ssid, status, now)
                return WATCH_MS
            return POLL_MS
        if self.state == "joined":
            if sta.isconnected():
                return WATCH_MS
            self.log("wifi: link to %r lost, rejoining" % ssid)
            self._set("lost")
            self._wait = 0
            self._since = now
        left = self._wait - self._diff(now, self._since)
        if left > 0:
            return min(left, WATCH_MS)
        self.retries += 1
        self.log("wifi: joining %r again (retry %d) ..." % (ssid, self.retries))
        try:
            sta.active(True)
            if self.state == "lost":
                sta.disconnect()
            sta.connect(ssid, self.config.get("wifi_password") or "")
        except OSError as e:
            self.log("wifi: could not join %r: %s" % (ssid, e))
            self._failed(sta, ssid, None, now)
            return WATCH_MS
        self._attempt = now
        return POLL_MS

    def _joined(self, sta, ssid):
        self._attempt = None
        self._failures = 0
        try:
            self.network.WLAN(self.network.AP_IF).active(False)
        except Exception:  # noqa: BLE001
            pass
        self._set("joined")
        ip = sta.ifconfig()[0]
        self.log("wifi: connected to %r, address %s" % (ssid, ip))
        self.log("open " + url(ip, self.config.get("port", 80)) + " in a browser")

    def _failed(self, sta, ssid, status, now):
        self._attempt = None
        self._failures += 1
        if status is not None:
            self.log("wifi: could not join %r (%s)" % (ssid, _status_text(self.network, status)))
        try:  # stop trying in the background: it disturbs the access point
            sta.disconnect()
            sta.active(False)
        except Exception:  # noqa: BLE001
            pass
        self._wait = min(RETRY_MAX_MS, RETRY_FIRST_MS << min(self._failures - 1, 8))
        self._since = now
        if self.state == "lost" and self._failures >= LOST_ATTEMPTS:
            ap = start_ap(self.config, self.network, self.log)
            self._set("ap")
            name = device_name(self.config, self.network.WLAN(self.network.STA_IF))
            self.log("join the Wi-Fi network %r, then open %s in a browser"
                     % (name, url(ap.ifconfig()[0], self.config.get("port", 80))))
