"""Take the README's screenshots of the dashboard, from the real simulator.

    python3 tools/screenshots.py [--seconds 70] [--out docs]

Starts tools/simulate.py on a free port (5 samples a second), lets it run
for --seconds (enough for a full 1 min window), switching the LED on and
the fan to 40 % halfway from a page as a user would, then opens a fresh
page (the device's history draws at once) in headless Chromium four times
and writes:

    dashboard.png             desktop (1280x900), light, hovering a chart
    dashboard-dark.png        desktop, dark
    dashboard-phone.png       phone (390x844), light, the first screen
    dashboard-phone-dark.png  phone, dark

Needs Debian's Chromium (/usr/bin/chromium, or MICROWS_CHROMIUM) and the
Python package playwright (host_tests/requirements.txt); never `playwright install`.
"""

import argparse
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = os.environ.get("MICROWS_CHROMIUM") or "/usr/bin/chromium"
SHOTS = [  # file, viewport, colour scheme, hover a chart
    ("dashboard.png", {"width": 1280, "height": 900}, "light", True),
    ("dashboard-dark.png", {"width": 1280, "height": 900}, "dark", True),
    ("dashboard-phone.png", {"width": 390, "height": 844}, "light", False),
    ("dashboard-phone-dark.png", {"width": 390, "height": 844}, "dark", False),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_simulator(port):
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "simulate.py"), "--host", "127.0.0.1",
                             "--port", str(port), "--rate", "5"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("screenshots: the simulator exited with %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("screenshots: the simulator did not listen on port %d" % port)


def live(page):
    page.wait_for_function("() => document.querySelector('#state').dataset.state === 'live'", timeout=10000)


def set_outputs(browser, url):
    """The LED on and the fan at 40 %, through the page's own controls."""
    page = browser.new_page()
    page.goto(url)
    live(page)
    if page.locator("#led-toggle").count():
        page.click("#led-toggle")
    page.evaluate("""() => { const e = document.querySelector('input[type=range][data-output]');
        if (e) { e.value = 40; e.dispatchEvent(new Event('input')); e.dispatchEvent(new Event('change')); } }""")
    page.wait_for_timeout(500)
    page.close()


def shoot(browser, url, path, viewport, scheme, hover):
    page = browser.new_page(viewport=viewport, color_scheme=scheme, device_scale_factor=1)
    page.goto(url)
    live(page)
    page.click("#window >> text='1 min'")
    page.wait_for_function("() => document.querySelector('[data-tile=clients] .val').textContent !== '–'",
                           timeout=10000)
    if hover:
        box = page.locator("[data-sensor=temperature] canvas").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] / 2)
    page.wait_for_timeout(700)
    page.screenshot(path=path)
    page.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description="screenshots of the dashboard for the README")
    parser.add_argument("--seconds", type=float, default=70, help="let the simulator run this long first (default 70)")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs"), help="folder to write to (default docs/)")
    args = parser.parse_args(argv)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sys.exit("screenshots.py: the Python package playwright is missing: "
                 "python3 -m pip install -r host_tests/requirements.txt (it uses Debian's Chromium: "
                 "no `playwright install`)")
    if not os.access(CHROMIUM, os.X_OK):
        sys.exit("screenshots.py: no Chromium at %s: apt-get install chromium, or set MICROWS_CHROMIUM to "
                 "a Chromium binary" % CHROMIUM)

    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import build_www

    build_www.build()
    os.makedirs(args.out, exist_ok=True)
    port = free_port()
    url = "http://127.0.0.1:%d/" % port
    proc = start_simulator(port)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
            try:
                time.sleep(args.seconds / 2)
                set_outputs(browser, url)
                time.sleep(args.seconds / 2)
                for name, viewport, scheme, hover in SHOTS:
                    path = os.path.join(args.out, name)
                    shoot(browser, url, path, viewport, scheme, hover)
                    print("wrote", os.path.relpath(path, ROOT))
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
