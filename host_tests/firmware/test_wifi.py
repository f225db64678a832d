"""wifi_join.connect: station when it can, its own access point when it cannot,
and never a password in the output."""
import pytest

import wifi
import wifi_join
from fakes import Clock, FakeNetwork, ticks_diff

HOME = {"home": "correct horse"}


def config(**kw):
    base = {"wifi_ssid": "home", "wifi_password": "correct horse", "device_name": "", "ap_password": "",
            "port": 80}
    base.update(kw)
    return base


def run(cfg, net, timeout_ms=15000):
    clock = Clock()
    lines = []
    result = wifi_join.connect(cfg, net, clock.sleep_ms, clock, ticks_diff, timeout_ms, log=lines.append)
    return result, lines, clock


def test_wifi_station_joins_and_prints_the_url():
    net = FakeNetwork(HOME)
    (mode, ip), lines, _ = run(config(), net)
    assert (mode, ip) == ("station", "192.168.1.57")
    assert lines[-1] == "open http://192.168.1.57/ in a browser"
    assert ("connect", "home") in net.calls


def test_wifi_station_turns_the_access_point_off():
    net = FakeNetwork(HOME)
    run(config(), net)
    assert net.WLAN(net.AP_IF).active() is False
    assert ("active", net.AP_IF, False) in net.calls


def test_wifi_url_shows_a_port_other_than_80():
    (mode, ip), lines, _ = run(config(port=8080), FakeNetwork(HOME))
    assert lines[-1] == "open http://192.168.1.57:8080/ in a browser"


def test_wifi_timeout_falls_back_to_access_point():
    net = FakeNetwork({"home": "correct horse"}, join_polls=10 ** 9)  # never gets an address
    (mode, ip), lines, clock = run(config(), net, timeout_ms=15000)
    assert (mode, ip) == ("ap", "192.168.4.1")
    assert 15000 <= clock.now < 15000 + 2 * wifi.POLL_MS
    assert any("within 15 s" in line for line in lines)
    assert lines[-1] == "join the Wi-Fi network 'microws-3f2a', then open http://192.168.4.1/ in a browser"


def test_wifi_unknown_network_waits_for_the_timeout():
    # a router that is still booting after a power cut: keep trying
    net = FakeNetwork({})
    (mode, _), lines, clock = run(config(), net, timeout_ms=5000)
    assert mode == "ap" and clock.now >= 5000
    assert any("no ap found" in line for line in lines)


def test_wifi_wrong_password_falls_back_at_once():
    net = FakeNetwork({"home": "another password"})
    (mode, ip), lines, clock = run(config(), net)
    assert (mode, ip) == ("ap", "192.168.4.1")
    assert clock.now < 1000
    assert any("wrong password" in line for line in lines)


def test_wifi_failed_station_is_switched_off():
    net = FakeNetwork({"home": "another password"})
    run(config(), net)
    sta = net.WLAN(net.STA_IF)
    assert sta.active() is False and ("disconnect",) in net.calls


def test_wifi_without_ssid_starts_access_point_straight_away():
    net = FakeNetwork(HOME)
    (mode, ip), lines, clock = run(config(wifi_ssid=""), net)
    assert (mode, ip) == ("ap", "192.168.4.1")
    assert clock.now == 0
    assert not any(c[0] == "connect" for c in net.calls)
    assert "no wifi_ssid" in lines[0]


def test_wifi_access_point_named_from_mac_is_open_without_password():
    net = FakeNetwork(mac=b"\x24\x0a\xc4\x12\x3f\x2a")
    run(config(wifi_ssid=""), net)
    ap = net.WLAN(net.AP_IF)
    assert ap.active() is True
    assert ap.configured == {"essid": "microws-3f2a", "authmode": net.AUTH_OPEN}


def test_wifi_access_point_uses_device_name_and_password():
    net = FakeNetwork()
    (_, _), lines, _ = run(config(wifi_ssid="", device_name="kitchen", ap_password="ap-secret-1"), net)
    ap = net.WLAN(net.AP_IF)
    assert ap.configured == {"essid": "kitchen", "password": "ap-secret-1", "authmode": net.AUTH_WPA2_PSK}
    assert "join the Wi-Fi network 'kitchen'" in lines[-1]
    assert any("WPA2" in line for line in lines)


def test_wifi_access_point_on_pico_w_firmware_uses_ssid_key_security():
    net = FakeNetwork(cyw43=True)
    run(config(wifi_ssid="", ap_password="ap-secret-1"), net)
    ap = net.WLAN(net.AP_IF)
    assert ap.configured["ssid"] == "microws-3f2a"
    assert ap.configured["key"] == "ap-secret-1"
    assert ap.configured["security"] == wifi.CYW43_WPA2_AES_PSK


def test_wifi_access_point_on_pico_w_open():
    net = FakeNetwork(cyw43=True)
    run(config(wifi_ssid=""), net)
    assert net.WLAN(net.AP_IF).configured["security"] == wifi.CYW43_OPEN
    assert "key" not in net.WLAN(net.AP_IF).configured


def test_wifi_security_prefers_the_wlan_class_constants():
    class Modern:  # network module of firmware with WLAN.SEC_* constants
        class WLAN:
            SEC_OPEN = 66
            SEC_WPA2 = 77

    assert wifi._security(Modern, "pw") == 77
    assert wifi._security(Modern, "") == 66
    esp = FakeNetwork()
    assert wifi._security(esp, "pw") == esp.AUTH_WPA2_PSK
    assert wifi._security(FakeNetwork(cyw43=True), "pw") == wifi.CYW43_WPA2_AES_PSK


def test_wifi_sets_the_host_name_from_device_name():
    net = FakeNetwork(HOME)
    run(config(device_name="kitchen"), net)
    assert net.hostnames == ["kitchen"]


@pytest.mark.parametrize("networks, kw", [
    (HOME, {}),  # station
    ({"home": "x"}, {}),  # wrong password, then AP
    ({}, {"ap_password": "ap-pass-word"}),  # timeout, AP with password
])
def test_wifi_never_prints_a_password(capsys, networks, kw):
    net = FakeNetwork(networks)
    clock = Clock()
    wifi_join.connect(config(**kw), net, clock.sleep_ms, clock, ticks_diff, 3000)  # default log=print
    out = capsys.readouterr()
    text = out.out + out.err
    assert text.strip()
    for secret in ("correct horse", "ap-pass-word"):
        assert secret not in text


def test_wifi_device_name_without_mac_still_works():
    class NoMac:
        def config(self, key):
            raise OSError("no mac")

    assert wifi.device_name({"device_name": ""}, NoMac()) == "microws-0000"
    assert wifi.device_name({"device_name": "lab"}, NoMac()) == "lab"


def test_wifi_connect_error_falls_back_to_access_point():
    net = FakeNetwork(HOME)

    def broken(ssid, password):
        raise OSError("Wifi Internal State Error")

    net.WLAN(net.STA_IF).connect = broken
    (mode, _), lines, _ = run(config(), net)
    assert mode == "ap"
    assert any("Wifi Internal State Error" in line for line in lines)


def test_wifi_still_joined_after_soft_reset_is_reused():
    net = FakeNetwork(HOME, join_polls=0)
    sta = net.WLAN(net.STA_IF)
    sta.active(True)
    sta.connect("home", "correct horse")
    sta.configured["essid"] = "home"
    net.calls.clear()
    (mode, ip), _, clock = run(config(), net)
    assert (mode, ip) == ("station", "192.168.1.57")
    assert not any(c[0] in ("connect", "disconnect") for c in net.calls) and clock.now == 0


def test_wifi_joined_to_another_network_rejoins():
    net = FakeNetwork(dict(HOME, office="pw"), join_polls=0)
    sta = net.WLAN(net.STA_IF)
    sta.active(True)
    sta.connect("office", "pw")
    sta.configured["essid"] = "office"
    (mode, _), _, _ = run(config(), net)
    assert mode == "station" and ("disconnect",) in net.calls and sta.connected_to[0] == "home"


def test_wifi_url():
    assert wifi.url("10.0.0.2") == "http://10.0.0.2/"
    assert wifi.url("10.0.0.2", 8080) == "http://10.0.0.2:8080/"
