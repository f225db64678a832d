"""Fakes of the MicroPython port modules the firmware is given (machine,
network, dht, esp32, gc) and of an I2C bus, shaped after the real APIs."""


class Clock:
    """A ticks_ms() that moves only when a test says so."""

    def __init__(self, start=0):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, ms):
        self.now += ms

    def sleep_ms(self, ms):  # for wifi.connect: sleeping advances time
        self.now += ms


def ticks_diff(new, old):
    return new - old


# ------------------------------------------------------------------ network

class FakeWLAN:
    """network.WLAN: one object per interface, as on a board."""

    def __init__(self, net, interface):
        self.net = net
        self.interface = interface
        self._active = False
        self.configured = {}
        self.connected_to = None
        self.polls = 0

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)
        self.net.calls.append(("active", self.interface, bool(on)))

    def connect(self, ssid, password):
        assert self.interface == self.net.STA_IF, "only the station interface connects"
        assert self._active, "connect() on an inactive interface"
        self.connected_to = (ssid, password)
        self.polls = 0
        self.net.calls.append(("connect", ssid))

    def disconnect(self):
        self.connected_to = None
        self.net.calls.append(("disconnect",))

    def isconnected(self):
        if self.interface != self.net.STA_IF or self.connected_to is None:
            return False
        self.polls += 1
        ssid, password = self.connected_to
        return (self.net.networks.get(ssid) == password and self.polls > self.net.join_polls)

    def status(self, param=None):
        if param == "rssi":
            return self.net.rssi
        if self.connected_to is None:
            return self.net.STAT_IDLE
        ssid, password = self.connected_to
        if ssid not in self.net.networks:
            return self.net.STAT_NO_AP_FOUND
        if self.net.networks[ssid] != password and self.polls >= self.net.badauth_polls:
            return self.net.STAT_WRONG_PASSWORD
        return self.net.STAT_CONNECTING

    def ifconfig(self):
        if self.interface == self.net.AP_IF:
            return ("192.168.4.1", "255.255.255.0", "192.168.4.1", "192.168.4.1")
        return ("192.168.1.57", "255.255.255.0", "192.168.1.1", "192.168.1.1")

    def config(self, *args, **kwargs):
        if args:
            assert len(args) == 1 and not kwargs
            if args[0] == "mac":
                return self.net.mac
            return self.configured[args[0]]
        for key in kwargs:
            if key not in self.net.config_keys:
                raise ValueError("unknown config param")
        self.configured.update(kwargs)


class FakeNetwork:
    """The `network` module of an ESP32 (essid/password/authmode and the
    AUTH_* constants); `cyw43=True` gives an early Pico W's: no AUTH_*,
    no authmode, but ssid/key/security."""

    STA_IF = 0
    AP_IF = 1
    STAT_IDLE = 1000
    STAT_CONNECTING = 1001
    STAT_WRONG_PASSWORD = 202
    STAT_NO_AP_FOUND = 201
    STAT_CONNECT_FAIL = 203
    STAT_GOT_IP = 1010

    def __init__(self, networks=None, join_polls=3, badauth_polls=2, mac=b"\x24\x0a\xc4\x12\x3f\x2a",
                 cyw43=False):
        self.networks = networks or {}
        self.join_polls = join_polls
        self.badauth_polls = badauth_polls
        self.mac = mac
        self.rssi = -61
        self.calls = []
        self.hostnames = []
        if cyw43:
            self.config_keys = ("ssid", "essid", "key", "password", "security", "channel")
        else:
            self.config_keys = ("ssid", "essid", "key", "password", "security", "authmode", "channel")
            self.AUTH_OPEN = 0
            self.AUTH_WPA2_PSK = 3
        self._wlans = {}

    def WLAN(self, interface):
        if interface not in self._wlans:
            self._wlans[interface] = FakeWLAN(self, interface)
        return self._wlans[interface]

    def hostname(self, name):
        self.hostnames.append(name)


# ------------------------------------------------------------------ machine

class FakePin:
    IN = 1
    OUT = 3
    PULL_UP = 1
    PULL_DOWN = 2

    def __init__(self, id, mode=None, pull=None):
        self.id = id
        self.mode = mode
        self.pull = pull
        self.level = 0
        self.writes = []

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = v
        self.writes.append(v)


class FakeADC:
    ATTN_11DB = 3

    def __init__(self, source, readings):
        self.source = source
        self.readings = readings
        self.attenuation = None

    def atten(self, a):
        self.attenuation = a

    def read_u16(self):
        value = self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]
        if isinstance(value, Exception):
            raise value
        return value


class FakeMachine:
    """machine with Pin, ADC, I2C/SoftI2C; adc_readings: {source: [u16...]}"""

    def __init__(self, adc_readings=None, i2c=None):
        self.pins = {}
        self.adcs = []
        self.adc_readings = adc_readings or {}
        self.i2c = i2c
        self.i2c_calls = []
        machine = self

        class Pin(FakePin):
            def __init__(self, id, mode=None, pull=None):
                FakePin.__init__(self, id, mode, pull)
                machine.pins[id] = self

        class ADC(FakeADC):
            def __init__(self, source):
                key = source.id if isinstance(source, FakePin) else source
                FakeADC.__init__(self, source, machine.adc_readings.get(key, [0]))
                machine.adcs.append(self)

        self.Pin = Pin
        self.ADC = ADC

    def I2C(self, bus, sda, scl, freq=400000):
        self.i2c_calls.append(("I2C", bus, sda.id, scl.id, freq))
        return self.i2c

    def SoftI2C(self, sda, scl, freq=400000):
        self.i2c_calls.append(("SoftI2C", sda.id, scl.id, freq))
        return self.i2c


class FakeI2C:
    """An I2C bus with one device that serves a 256-byte register map."""

    def __init__(self, address, registers):
        self.address = address
        self.regs = bytearray(256)
        for reg, data in registers.items():
            self.regs[reg:reg + len(data)] = bytes(data)
        self.writes = []
        self.reads = []
        self.fail = False

    def _check(self, addr):
        if self.fail or addr != self.address:
            raise OSError(19)  # ENODEV: nobody acknowledged the address

    def readfrom_mem(self, addr, reg, n):
        self._check(addr)
        self.reads.append((reg, n))
        return bytes(self.regs[reg:reg + n])

    def writeto_mem(self, addr, reg, buf):
        self._check(addr)
        self.writes.append((reg, bytes(buf)))
        self.regs[reg:reg + len(buf)] = bytes(buf)


# ---------------------------------------------------------------------- dht

class FakeDhtModule:
    """The `dht` module: DHT11/DHT22(pin) with measure(), temperature(),
    humidity(). `results` is a list of (t, h) or Exception, one per
    measure() (the last one repeats)."""

    def __init__(self, results):
        self.results = list(results)
        self.measures = 0
        self.made = []
        module = self

        class _DHT:
            def __init__(self, pin):
                self.pin = pin
                self._values = None
                module.made.append((type(self).__name__, pin.id))

            def measure(self):
                module.measures += 1
                r = module.results.pop(0) if len(module.results) > 1 else module.results[0]
                if isinstance(r, Exception):
                    raise r
                self._values = r

            def temperature(self):
                return self._values[0]

            def humidity(self):
                return self._values[1]

        class DHT11(_DHT):
            pass

        class DHT22(_DHT):
            pass

        self.DHT11 = DHT11
        self.DHT22 = DHT22
