"""tools/deploy.py --mqtt HOST[:PORT]: the mqtt block goes into the board's
config.json (the rest of a block already there is kept, the password never
printed), and the uplink's modules are among the files copied."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import deploy  # noqa: E402


def test_the_broker_goes_into_config_json_and_the_rest_of_the_block_stays():
    existing = {"board": "esp32", "mqtt": {"host": "old", "user": "dev", "password": "pw", "rate": 1}}
    data = deploy.build_config("esp32", existing, mqtt=("192.168.1.20", 1884))
    assert data["mqtt"] == {"host": "192.168.1.20", "port": 1884, "user": "dev", "password": "pw", "rate": 1}
    shown = deploy.describe_config(data)
    assert '"password": "***"' in shown and "pw\"" not in shown


def test_a_bad_broker_is_refused_before_any_board():
    with pytest.raises(SystemExit):
        deploy._parser().parse_args(["--board", "picow", "--mqtt", "host:99999"])
    assert deploy._parser().parse_args(["--board", "picow", "--mqtt", "10.0.0.2"]).mqtt == ("10.0.0.2", 1883)


def test_the_dry_run_copies_the_uplink_and_shows_the_block(capsys):
    def no_board(port):
        raise AssertionError("the dry run contacted a board")

    code = deploy.main(["--board", "picow", "--dry-run", "--wifi", "home", "--password", "hunter22",
                        "--mqtt", "192.168.1.20:1883"], board_factory=no_board)
    out = capsys.readouterr().out
    assert code == 0
    for name in ("mqtt", "mqtt_config", "uplink"):
        assert "/%s.mpy" % name in out
    assert '"mqtt": {"host": "192.168.1.20"' in out and "hunter22" not in out
