"""Replays the fuzzing corpus (inputs tools/fuzz.py found interesting, and
its seeds) through both parsers' checks: each must still end in a defined
outcome, within the limits."""

import importlib.util
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")

_spec = importlib.util.spec_from_file_location("fuzz", os.path.join(ROOT, "tools", "fuzz.py"))
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)


def corpus(target):
    folder = os.path.join(CORPUS, target)
    return sorted(os.path.join(folder, name) for name in os.listdir(folder))


@pytest.mark.parametrize("target", ["frames", "handshake"])
def test_corpus_is_there(target):
    assert len(corpus(target)) >= 5


@pytest.mark.parametrize("target", ["frames", "handshake"])
def test_every_corpus_input_has_a_defined_outcome_in_both_parsers(target):
    for path in corpus(target):
        with open(path, "rb") as f:
            data = f.read()
        fuzz.check_frames(data)  # raises AssertionError (or worse) on a violation
        fuzz.check_handshake(data)


def test_seeds_reach_the_outcomes_they_were_written_for():
    seeds = fuzz.seed_inputs()
    assert fuzz.check_frames(seeds["frames"]["text_hello"]) == (1,)
    assert fuzz.check_frames(seeds["frames"]["length_2_63"]) == ((16, 1009),)
    assert fuzz.check_frames(seeds["frames"]["unmasked"]) == ((16, 1002),)
    assert fuzz.check_frames(seeds["frames"]["overlong_utf8"]) == ((16, 1007),)
    assert fuzz.check_frames(seeds["frames"]["fragments_with_ping"]) == (9, 1)
    assert fuzz.check_handshake(seeds["handshake"]["valid"]) == (101,)
    assert fuzz.check_handshake(seeds["handshake"]["version_8"])[0] == 426
    assert fuzz.check_handshake(seeds["handshake"]["tiny_limit"])[0] == 431
