"""The README's first table (which board runs microws, and what to do)
against the board files it comes from, so the two cannot disagree."""

import json
import os
import re

import deploy

README = os.path.join(deploy.ROOT, "README.md")


def _readme():
    with open(README, encoding="utf-8") as f:
        return f.read()


def _top_table():
    """{board file name: (stock, dashboards, what to do)} from the table
    before "## The two commands"; asserts its header says what it holds."""
    top = _readme().split("\n## The two commands", 1)[0]
    rows = [line for line in top.splitlines() if line.startswith("|")]
    header = rows[0]
    assert "stock MicroPython firmware works?" in header and "`max_clients`" in header, header
    found = {}
    for row in rows[2:]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        name = re.search(r"`boards/(\w+)\.json`", cells[0]).group(1)
        found[name] = tuple(cells[1:])
    return found


def _slugs():
    """The anchors GitHub makes of the README's headings."""
    headings = re.findall(r"^#+ (.+)$", _readme(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def _board(name):
    with open(os.path.join(deploy.BOARDS, name + ".json"), encoding="utf-8") as f:
        return json.load(f)


def test_the_readme_table_has_every_board_file():
    names = sorted(f[:-5] for f in os.listdir(deploy.BOARDS) if f.endswith(".json"))
    assert sorted(_top_table()) == names


def test_each_row_says_what_its_board_file_measured():
    for name, (stock, dashboards, todo) in _top_table().items():
        board = _board(name)
        measured = board["measured"]
        if not board["mpy_arch"]:  # the simulation: no firmware to flash
            assert stock.startswith("—") and "tools/simulate.py" in todo, name
        else:
            works = board.get("deploy", "mpy") == "mpy" and measured["fits"]
            assert stock.split(":")[0] == ("yes" if works else "no"), name
        assert int(re.match(r"\d+", dashboards).group()) == (board["max_clients"] if measured["fits"] else 0), name
        if not measured["fits"]:
            assert "not a supported target" in todo, name
        elif board.get("deploy", "mpy") == "frozen":
            assert "--board %s --frozen`" % name in todo and "Freezing" in todo, name
        elif board["mpy_arch"]:
            assert "`python3 tools/deploy.py --board %s`" % name in todo, name


def test_the_table_links_to_headings_that_exist():
    links = re.findall(r"\]\(#([\w\-]+)\)", "".join("".join(row) for row in _top_table().values()))
    assert links and set(links) <= _slugs()


def test_the_dry_run_verdict_quoted_in_the_readme_is_the_tools():
    verdict = deploy.fit_verdict(deploy.load_board_file("esp32"))
    assert verdict and "\n    %s\n" % verdict in _readme()
