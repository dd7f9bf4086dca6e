"""Chunking for streaming: whole sentences, cuts only between words, fixed buckets."""

from __future__ import annotations

import pytest

from myna.text import phonemes
from myna.text.chunk import Chunker, Item
from myna.text.units import WordSpan

INV = phonemes.ARPABET_V1


def words(text: str, rate: float = 1.0) -> list[Item]:
    """Fake phonemization: each letter of a word becomes AH0, punctuation becomes a break."""
    items: list[Item] = []
    offset = 0
    for raw in text.split(" "):
        word = raw.rstrip(",.?!")
        if word:
            items.append(Item(("AH0",) * len(word), WordSpan(offset, len(word)), rate))
        for mark in raw[len(word) :]:
            items.append(Item((mark,), None, rate))
        offset += len(raw) + 1
    return items


def spans(chunk) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    return [(w.char_offset, w.char_length) for w in chunk.words]


def test_each_sentence_is_its_own_chunk() -> None:
    text = "Turn left. Then right! Where now?"
    chunks = list(Chunker(INV, 64).chunks(words(text)))
    assert [[text[o : o + n] for o, n in spans(c)] for c in chunks] == [["Turn", "left"], ["Then", "right"], ["Where", "now"]]


def test_chunks_start_with_bos_end_with_eos_and_keep_the_pause() -> None:
    (chunk,) = Chunker(INV, 64).chunks(words("Stop here."))
    assert chunk.ids[0] == INV.id_of(phonemes.BOS) and chunk.ids[-1] == INV.id_of(phonemes.EOS)
    assert chunk.ids[-2] == INV.id_of(".")
    assert len(chunk.ids) == len(chunk.word_of)


def test_a_sentence_that_fits_the_bucket_is_one_chunk() -> None:
    # A fixed-shape encoder costs the same for 40 ids as for 126, so cutting the first sentence only
    # breaks its prosody (EOS, then BOS with no pause) without bringing the first audio forward.
    text = "In three hundred meters, turn left onto the main street and keep going until the river bridge appears ahead."
    (chunk,) = Chunker(INV, 128).chunks(words(text))
    assert len(chunk.words) == 19


def test_no_chunk_exceeds_the_bucket_and_no_word_is_split() -> None:
    text = " ".join(["navigation"] * 60) + "."
    chunks = list(Chunker(INV, 48).chunks(words(text)))
    assert all(len(c.ids) <= 48 for c in chunks)
    assert sum(len(c.words) for c in chunks) == 60
    for chunk in chunks:
        for index in range(len(chunk.words)):
            assert chunk.word_of.count(index) == len("navigation")


def test_a_word_longer_than_a_chunk_is_cut_into_pieces_that_keep_its_span() -> None:
    item = Item(("AH0",) * 100, WordSpan(0, 100))
    chunks = list(Chunker(INV, 32).chunks([item]))
    assert all(len(c.ids) <= 32 for c in chunks)
    assert {spans(c)[0] for c in chunks} == {(0, 100)}
    assert sum(c.word_of.count(0) for c in chunks) == 100


def test_words_sharing_a_span_become_one_word_entry() -> None:
    span = WordSpan(4, 2)
    items = [Item(("F", "AY1", "V"), span), Item(("D", "AA1", "L", "ER0", "Z"), span)]
    (chunk,) = Chunker(INV, 64).chunks(items)
    assert chunk.words == (span,)
    assert chunk.word_of.count(0) == 8


def test_a_rate_change_starts_a_new_chunk_with_that_rate() -> None:
    items = words("slow words here") + words("fast words", rate=1.5)
    chunks = list(Chunker(INV, 64).chunks(items))
    assert [c.rate for c in chunks] == [1.0, 1.5]


def test_a_long_break_ends_the_chunk_and_becomes_silence() -> None:
    items = words("wait") + [Item((",",), None, break_ms=1500)] + words("now")
    chunks = list(Chunker(INV, 64).chunks(items))
    assert [c.silence_after_ms for c in chunks] == [1500, 0]


def test_text_of_only_breaks_gives_no_chunk() -> None:
    assert list(Chunker(INV, 64).chunks([Item((".",), None), Item((",",), None)])) == []


def test_a_tiny_bucket_is_refused() -> None:
    with pytest.raises(ValueError):
        Chunker(INV, 4)
