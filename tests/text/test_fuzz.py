"""Fuzz the text frontend: random Unicode through normalize → G2P, random tag soup through the SSML reader.

Only the documented input errors (InvalidText, TextTooLong) may escape; everything else is a bug.
Fixed seeds keep failures reproducible; each test bounds its own time.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable

import pytest
from myna.errors import InvalidText, TextTooLong
from myna.text.g2p import G2P
from myna.text.lexicon import Lexicon, default_lexicon_path
from myna.text.phonemes import PHONEMES
from myna.text.ssml import parse_ssml
from myna.text.units import Break, Word

SEED = 20240611
N_STRINGS = 10_000
BIG_LINE = 100_000
ALLOWED = (InvalidText, TextTooLong)
_SPOKEN = re.compile(r"[a-z']+")
_VALID = frozenset(PHONEMES)

WORDS = ["turn", "left", "right", "at", "the", "next", "exit", "in", "miles", "km", "mph", "km/h", "ETA", "ETA:", "Dr.", "St.", "Mr.", "A4", "I-95", "5:45", "12:00pm", "3rd", "21st", "$3.50", "€12", "-12°C", "98.6°F", "1,000,000", "1.5", "50%", "2024-06-11", "06/11/2024", "+1", "(555)", "010-9999", "#3", "@home", "e-mail", "USB-C", "read", "live", "lead", "wind", "record", "present", "object", "close", "use", "tear", "don't", "it's", "O'Brien", "rock'n'roll", "co-op", "naïve", "café", "Straße", "ΑΒΓ", "Москва", "東京", "안녕", "مرحبا", "שלום", "१२३", "٣٤٥", "０１２", "Ⅻ", "½", "¾", "²", "³", "x²", "H₂O", "...", "!?", "?!", "--", "—", "–", "…", "«", "»", "“", "”", "'", '"']
EMOJI = ["\U0001F600", "\U0001F469\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466", "\U0001F3F3\uFE0F\u200D\U0001F308",
         "\U0001F44D\U0001F3FD", "\u2764\uFE0F", "\U0001F1E9\U0001F1EA", "1\uFE0F\u20E3"]
RANGES = [
    (0x00, 0x1F), (0x7F, 0x9F),  # controls
    (0xD800, 0xDFFF),  # lone surrogates
    (0x200B, 0x200F), (0x202A, 0x202E), (0x2066, 0x2069), (0xFEFF, 0xFEFF),  # zero-width, bidi
    (0x0300, 0x036F), (0x20D0, 0x20FF),  # combining marks
    (0x4E00, 0x9FFF), (0x3040, 0x30FF), (0xAC00, 0xD7A3),  # CJK, kana, hangul
    (0x0590, 0x06FF),  # Hebrew, Arabic
    (0x0030, 0x0039), (0x0660, 0x0669), (0xFF10, 0xFF19), (0x2150, 0x218F),  # digits, numerals, fractions
    (0x0020, 0x007E), (0x00A0, 0x024F),  # ASCII, Latin-1, Latin Extended
    (0x2000, 0x206F), (0x20A0, 0x20CF), (0x2100, 0x214F),  # punctuation, currency, letterlike
    (0x1F300, 0x1FAFF), (0xFFF0, 0xFFFF), (0xE000, 0xE0FF), (0x10FFF0, 0x10FFFF),
]


def random_piece(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.35:
        return rng.choice(WORDS)
    if kind < 0.45:
        return rng.choice(EMOJI)
    if kind < 0.6:
        return str(rng.choice([rng.randint(0, 99), rng.randint(0, 10**6), rng.randint(0, 10**15), rng.random() * 1000]))
    lo, hi = rng.choice(RANGES)
    return "".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 6)))


def random_text(rng: random.Random) -> str:
    parts = [random_piece(rng) for _ in range(rng.randint(0, 24))]
    seps = [" ", "", ", ", ". ", "\n", "\t", "-", "/", ":"]
    return "".join(p + rng.choice(seps) for p in parts)


def big_lines(rng: random.Random) -> list[str]:
    prose = " ".join(rng.choice(WORDS) for _ in range(BIG_LINE // 4))[:BIG_LINE]
    noise = "".join(random_piece(rng) for _ in range(BIG_LINE // 3))[:BIG_LINE]
    digits = "".join(rng.choice("0123456789.,:") for _ in range(BIG_LINE))
    return [prose, noise, digits, "a" * BIG_LINE]


@pytest.fixture(scope="module")
def g2p() -> G2P:
    path = default_lexicon_path()
    assert path is not None
    return G2P(Lexicon.load(path), None)


def check_tokens(text: str, tokens: list, phonemized: list) -> None:
    assert len(phonemized) == len(tokens)
    for token, symbols in phonemized:
        if isinstance(token, Word):
            assert _SPOKEN.fullmatch(token.text), token
            span = token.span
            assert 0 <= span.char_offset and span.char_offset + span.char_length <= len(text), (token, len(text))
            assert set(symbols) <= _VALID
        else:
            assert isinstance(token, Break) and symbols == ()


def run_guarded(fn: Callable[[], None], text: str) -> bool:
    """Run one case; True when it raised an allowed input error."""
    try:
        fn()
    except ALLOWED:
        return True
    except Exception as exc:  # pragma: no cover - the failure report
        raise AssertionError(f"{type(exc).__name__}: {exc} on input {text[:200]!r}") from exc
    return False


@pytest.mark.timeout(120)
def test_random_unicode_through_normalize_and_g2p(g2p: G2P) -> None:
    try:
        from myna.text.normalize import normalizer_for
    except ImportError:
        pytest.skip("the English normalizer (myna.text.normalize) is not there yet")
    normalizer = normalizer_for("en")
    rng = random.Random(SEED)
    refused = 0
    start = time.perf_counter()
    for _ in range(N_STRINGS):
        text = random_text(rng)

        def case(text: str = text) -> None:
            tokens = normalizer.tokens(text, base=0)
            check_tokens(text, tokens, g2p.phonemize(tokens))
            assert isinstance(normalizer.spoken(text), str)

        refused += run_guarded(case, text)
    small = time.perf_counter() - start
    for text in big_lines(rng):
        t0 = time.perf_counter()

        def big(text: str = text) -> None:
            tokens = normalizer.tokens(text, base=0)
            check_tokens(text, tokens, g2p.phonemize(tokens))

        run_guarded(big, text)
        assert time.perf_counter() - t0 < 2.0, f"100 kB line took {time.perf_counter() - t0:.2f} s"
    total = time.perf_counter() - start
    assert small < 30.0 and total < 40.0, (small, total)
    assert refused < N_STRINGS  # most random text is speakable


@pytest.mark.timeout(60)
def test_random_words_through_g2p(g2p: G2P) -> None:
    """The G2P alone survives words that break the normalizer's contract (no normalizer needed)."""
    from myna.text.units import WordSpan

    rng = random.Random(SEED + 1)
    start = time.perf_counter()
    for _ in range(N_STRINGS):
        pieces = [random_piece(rng) for _ in range(rng.randint(1, 8))]
        tokens = [Word(p.lower(), WordSpan(0, len(p)), spell=rng.random() < 0.1) if rng.random() < 0.9
                  else Break(rng.choice(",.?!")) for p in pieces]
        for token, symbols in g2p.phonemize(tokens):
            assert set(symbols) <= _VALID, (token, symbols)
    assert time.perf_counter() - start < 30.0


SOUP = [
    "<speak>", "</speak>", "<p>", "</p>", "<s>", "</s>", "<break/>", '<break time="300ms"/>', '<break time="99s"/>',
    '<break strength="strong"/>', '<prosody rate="slow">', '<prosody rate="1.5">', '<prosody rate="abc">', "</prosody>",
    '<say-as interpret-as="characters">', '<say-as interpret-as="date" format="dmy">', "</say-as>",
    '<sub alias="World Wide Web">', '<sub alias="">', "</sub>", '<phoneme ph="HH AH0 L OW1">', '<phoneme alphabet="ipa" ph="x">',
    '<phoneme ph="ZZ9">', "</phoneme>", "<emphasis>", "</emphasis>", '<mark name="a"/>', "<audio/>", "<voice>",
    "&amp;", "&lt;", "&#65;", "&#x1F600;", "&#xD800;", "&nope;", "&", "<", ">", "<!-- c -->", "<!--", "<![CDATA[x]]>",
    '<!DOCTYPE speak [<!ENTITY a "b">]>', '<?xml version="1.0"?>', "<?pi x?>", "<speak xml:lang='en-US'>", "</x>",
    "<p a='1'>", "<s\n>", "< speak>", "<speak/>", "\x00", "\ud800", "\u202e",
]


@pytest.mark.timeout(60)
def test_ssml_tag_soup(g2p: G2P) -> None:
    rng = random.Random(SEED + 2)
    try:
        from myna.text.normalize import normalizer_for

        normalizer = normalizer_for("en")
    except ImportError:
        normalizer = None
    parsed = 0
    start = time.perf_counter()
    for i in range(N_STRINGS):
        parts = [rng.choice(SOUP) if rng.random() < 0.6 else random_piece(rng) for _ in range(rng.randint(0, 20))]
        if i % 2:  # half the documents are shaped like real SSML, so the parser gets past the root
            parts = ["<speak>", *parts, "</speak>"]
        doc = "".join(parts)

        def case(doc: str = doc) -> None:
            segments = parse_ssml(doc, max_chars=5000)
            for seg in segments:
                span = seg.span()
                assert 0 <= span.char_offset and span.char_offset + span.char_length <= len(doc)
                assert seg.rate > 0 and (seg.phonemes is None or set(seg.phonemes) <= _VALID)
                if normalizer is not None and seg.text and not seg.is_break:
                    g2p.phonemize(normalizer.tokens(seg.alias or seg.text, base=seg.base))

        parsed += not run_guarded(case, doc)
    assert parsed > 100  # the soup is not all refused: the reader's real paths get exercised
    assert time.perf_counter() - start < 30.0
