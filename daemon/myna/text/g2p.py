"""Words to ARPAbet: explicit phonemes, spelled letters, homographs, the lexicon, then the neural model.

Sources, in order, for each :class:`~myna.text.units.Word`:

1. ``Word.phonemes`` (SSML ``<phoneme>``) is used as given.
2. ``Word.spell`` words and single letters other than the article "a" are said as letter names.
3. Homographs (read, live, lead, wind, record, present, object, close, use, tear and a few of their
   ``-s`` forms) take the CMUdict variant that the neighbouring words point at (see ``HOMOGRAPHS``).
4. The lexicon's first (most common) variant.
5. Cheap, reliable derivations from a lexicon word: possessives (``driver's``, ``drivers'``) and
   ``-s``/``-es``/``-ies``, ``-ed``, ``-ing`` (with a dropped ``e`` or a doubled consonant) when the
   stem is a known word of three or more letters; the suffix's sound follows the stem's last phoneme.
6. The neural G2P, when one is loaded.
7. Otherwise the word is spelled letter by letter.

After that, "the" before a vowel sound becomes ``DH IY0`` ("the end", "the hour").

Homograph rules are a table of cues tried in order; the first that matches picks the reading:
``prev``/``next`` look at the adjacent word, ``prev2`` the word before that, ``ahead`` any of the
next three words, ``sentence`` any word of the sentence.  Sentence breaks (``.``, ``?``, ``!``)
bound the sentence; a comma cuts adjacency.  With no cue the rule's default applies.  Rules are
heuristics: they fix the common car/appliance phrasings and leave rarer syntax to the default.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .lexicon import Lexicon
from .phonemes import PHONEMES, is_vowel
from .units import Break, Token, Word

if TYPE_CHECKING:
    from .g2p_neural import NeuralG2P

_LOGGER = logging.getLogger(__name__)

_VALID = frozenset(PHONEMES)
_CACHE_LIMIT = 4096
_SENTENCE_MARKS = frozenset(".?!")


class Predictor(Protocol):
    """What the G2P needs of a neural model (``NeuralG2P`` satisfies it)."""

    def predict(self, word: str) -> tuple[str, ...]:
        """Phonemes for one lower-case word."""
        ...


LETTER_NAMES: dict[str, tuple[str, ...]] = {
    "a": ("EY1",), "b": ("B", "IY1"), "c": ("S", "IY1"), "d": ("D", "IY1"), "e": ("IY1",),
    "f": ("EH1", "F"), "g": ("JH", "IY1"), "h": ("EY1", "CH"), "i": ("AY1",), "j": ("JH", "EY1"),
    "k": ("K", "EY1"), "l": ("EH1", "L"), "m": ("EH1", "M"), "n": ("EH1", "N"), "o": ("OW1",),
    "p": ("P", "IY1"), "q": ("K", "Y", "UW1"), "r": ("AA1", "R"), "s": ("EH1", "S"), "t": ("T", "IY1"),
    "u": ("Y", "UW1"), "v": ("V", "IY1"), "w": ("D", "AH1", "B", "AH0", "L", "Y", "UW0"),
    "x": ("EH1", "K", "S"), "y": ("W", "AY1"), "z": ("Z", "IY1"),
    "0": ("Z", "IH1", "R", "OW0"), "1": ("W", "AH1", "N"), "2": ("T", "UW1"), "3": ("TH", "R", "IY1"),
    "4": ("F", "AO1", "R"), "5": ("F", "AY1", "V"), "6": ("S", "IH1", "K", "S"), "7": ("S", "EH1", "V", "AH0", "N"),
    "8": ("EY1", "T"), "9": ("N", "AY1", "N"),
}
"""Letter (and digit) names for spelled words."""


# ---------------------------------------------------------------------------------------------
# Homographs
# ---------------------------------------------------------------------------------------------

DET = frozenset(
    ["a", "an", "the", "this", "that", "these", "those", "my", "your", "his", "her", "its", "our", "their", "some", "any", "no", "every", "each", "another", "one", "two", "three", "several", "many", "few"]
)
MODAL = frozenset(
    ["to", "will", "would", "can", "could", "shall", "should", "may", "might", "must", "won't", "wouldn't", "can't", "cannot", "couldn't", "shouldn't", "i'll", "you'll", "we'll", "they'll", "he'll", "she'll", "please", "let's", "let"]
)
DO = frozenset(["do", "does", "did", "don't", "doesn't", "didn't"])
HAVE = frozenset(["have", "has", "had", "having", "i've", "you've", "we've", "they've", "hasn't", "haven't", "hadn't"])
BE = frozenset(["is", "are", "was", "were", "be", "been", "being", "am", "isn't", "aren't", "wasn't", "weren't"])
SUBJ = frozenset(["i", "you", "we", "they", "people", "who"])
THIRD = frozenset(["he", "she", "it", "who", "that", "which", "one", "someone", "everyone", "nobody", "anyone", "somebody", "everybody"])
OBJ = frozenset(
    ["the", "a", "an", "it", "this", "that", "these", "those", "your", "my", "his", "her", "their", "our", "them", "him", "us", "me", "you"]
)


@dataclass(frozen=True)
class Cue:
    """One context test: ``where`` is prev, prev2, next, ahead or sentence; ``words`` the trigger set."""

    where: str
    words: frozenset[str]
    reading: str


@dataclass(frozen=True)
class Homograph:
    """A word with context-dependent pronunciations chosen among its CMUdict variants."""

    readings: dict[str, tuple[str, ...]]
    cues: tuple[Cue, ...]
    default: str


def _cue(where: str, words: Iterable[str] | str, reading: str) -> Cue:
    return Cue(where, frozenset(words.split() if isinstance(words, str) else words), reading)


def _p(s: str) -> tuple[str, ...]:
    return tuple(s.split())


_WIND_ADJ = "strong high cold north south east west northern southern eastern western light gusty heavy warm icy biting solar tail head cross gentle fierce"
_REC_ADJ = "world new all-time track criminal medical good bad best perfect clean public personal driving safety"

HOMOGRAPHS: dict[str, Homograph] = {
    "read": Homograph(
        {"present": _p("R IY1 D"), "past": _p("R EH1 D")},
        (
            _cue("prev2", HAVE, "past"),  # "have you read"
            _cue("prev2", MODAL | DO, "present"),  # "did you read", "will you read"
            _cue("prev", HAVE | BE | {"already", "get", "got"}, "past"),  # "have read", "was read"
            _cue("prev", MODAL | DO | DET | {"good"}, "present"),  # "will read", "a good read"
            _cue("sentence", "yesterday ago last earlier previously already once", "past"),
            _cue("prev", THIRD, "past"),  # "she read it": present would be "reads"
        ),
        "present",
    ),
    "live": Homograph(
        {"adj": _p("L AY1 V"), "verb": _p("L IH1 V")},
        (
            _cue("prev", BE | {"go", "goes", "went", "going", "gone", "now", "streaming", "broadcast", "broadcasting", "performed", "played", "playing", "sing", "singing"}, "adj"),
            _cue("prev", DET, "adj"),  # "a live show"
            _cue("next", "music band concert show shows broadcast stream streaming event events performance traffic "
                 "update updates audio video feed coverage tv television radio wire wires data chat view map "
                 "weather recording album version sports match game news camera position location", "adj"),
            _cue("prev", MODAL | DO | SUBJ | {"still", "and", "where"}, "verb"),  # "I live", "to live"
            _cue("next", "in at here there near with on alone together long forever by for off abroad nearby "
                 "without like under inside outside happily well close next above below across", "verb"),
        ),
        "verb",
    ),
    "lead": Homograph(
        {"metal": _p("L EH1 D"), "verb": _p("L IY1 D")},
        (
            _cue("next", "pipe pipes paint poisoning level levels free acid battery batteries shot weight weights "
                 "crystal pencil pencils ore content exposure contamination bullet bullets based lined solder", "metal"),
            _cue("prev", "of contains contain containing toxic molten unleaded heavy", "metal"),
        ),
        "verb",  # "take the lead", "lead the way", "lead singer"
    ),
    "wind": Homograph(
        {"air": _p("W IH1 N D"), "turn": _p("W AY1 N D")},
        (
            _cue("prev", DET | set(_WIND_ADJ.split()) | {"of", "against", "into"}, "air"),
            _cue("prev", MODAL | DO | SUBJ, "turn"),  # "to wind", "you wind"
            _cue("next", OBJ | {"up", "down", "back", "around", "round", "through", "along", "its"}, "turn"),
        ),
        "air",
    ),
    "record": Homograph(
        {"noun": _p("R EH1 K ER0 D"), "verb": _p("R AH0 K AO1 R D")},
        (
            _cue("prev", DET | set(_REC_ADJ.split()) | {"on", "off", "for", "of", "broke", "break", "set", "beat"}, "noun"),
            _cue("next", "player players label store shop high highs low lows time number breaking book books holder "
                 "company collection year levels temperature temperatures heat crowd profits sales", "noun"),
            _cue("prev", MODAL | DO | SUBJ, "verb"),
            _cue("next", OBJ | {"what", "everything", "audio", "video", "all", "messages", "every"}, "verb"),
        ),
        "noun",
    ),
    "present": Homograph(
        {"noun": _p("P R EH1 Z AH0 N T"), "verb": _p("P R IY0 Z EH1 N T")},
        (
            _cue("prev", DET | BE | {"at", "for", "until", "up", "birthday", "christmas", "wedding", "anniversary", "nice",
                                     "lovely", "small", "little", "perfect", "all", "not", "and", "past"}, "noun"),
            _cue("next", "day time moment tense situation value location position state case company circumstances "
                 "conditions era age generation form address", "noun"),
            _cue("prev", MODAL | DO | SUBJ, "verb"),
            _cue("next", OBJ | {"evidence", "information", "data", "results", "itself", "themselves"}, "verb"),
        ),
        "noun",
    ),
    "object": Homograph(
        {"noun": _p("AA1 B JH EH0 K T"), "verb": _p("AH0 B JH EH1 K T")},
        (
            _cue("prev", DET | {"an", "unknown", "foreign", "large", "small", "sharp", "moving", "heavy", "flying"}, "noun"),
            _cue("prev", MODAL | DO | SUBJ | {"strongly", "not"}, "verb"),
            _cue("next", "to", "verb"),  # "object to"
        ),
        "noun",
    ),
    "close": Homograph(
        {"near": _p("K L OW1 S"), "shut": _p("K L OW1 Z")},
        (
            _cue("next", "of", "shut"),  # "the close of business"
            _cue("next", "to by call calls friend friends range enough together behind relative relatives contact "
                 "attention race second look watch eye distance proximity", "near"),
            _cue("prev", BE | {"very", "so", "too", "quite", "pretty", "get", "getting", "got", "stay", "staying", "stays",
                               "keep", "come", "came", "coming", "how", "fairly", "dangerously", "really", "rather",
                               "as", "remain", "that's", "it's", "we're", "they're", "you're", "i'm", "he's", "she's",
                               "not", "up", "from"} | DET, "near"),
        ),
        "shut",  # "close the door", "the doors close"
    ),
    "use": Homograph(
        {"noun": _p("Y UW1 S"), "verb": _p("Y UW1 Z")},
        (
            _cue("prev", DET | {"in", "of", "for", "into", "personal", "daily", "commercial", "regular", "heavy", "frequent",
                                "common", "widespread", "practical", "public", "private", "fair", "proper", "much",
                                "further", "after", "before", "single", "continued", "extended", "excessive", "what's"}, "noun"),
            _cue("next", "of", "noun"),  # "the use of force"
        ),
        "verb",
    ),
    "tear": Homograph(
        {"cry": _p("T IH1 R"), "rip": _p("T EH1 R")},
        (
            _cue("prev2", "wear", "rip"),  # "wear and tear"
            _cue("next", "gas drop drops duct ducts stained streaked jerker fell falls rolled rolls ran runs trickled "
                 "streamed glistened", "cry"),
            _cue("prev", MODAL | DO | SUBJ | {"not"}, "rip"),
            _cue("next", OBJ | {"up", "down", "off", "apart", "open", "out", "into", "through", "away"}, "rip"),
            _cue("ahead", "eye eyes cheek cheeks face", "cry"),  # "a tear in her eye"
            _cue("next", "in", "rip"),  # "a tear in the sleeve"
            _cue("prev", DET | {"single", "lone", "silent", "happy"}, "cry"),
        ),
        "rip",  # "tear here", "tear along the line"
    ),
    # -s forms: a determiner or adjective before means the plural noun, a singular subject the verb.
    "lives": Homograph(
        {"noun": _p("L AY1 V Z"), "verb": _p("L IH1 V Z")},
        (
            _cue("prev", THIRD | {"still", "also", "now", "currently"}, "verb"),
            _cue("next", "in at here there near with on alone together by for next nearby abroad downtown upstairs "
                 "downstairs across", "verb"),
        ),
        "noun",
    ),
    "records": Homograph(
        {"noun": _p("R EH1 K ER0 D Z"), "verb": _p("R AH0 K AO1 R D Z")},
        (
            _cue("prev", DET | set(_REC_ADJ.split()) | {"of", "for", "our", "medical"}, "noun"),
            _cue("prev", THIRD | {"automatically", "also", "still"}, "verb"),
            _cue("next", OBJ | {"audio", "video", "everything", "all", "every"}, "verb"),
        ),
        "noun",
    ),
    "presents": Homograph(
        {"noun": _p("P R EH1 Z AH0 N T S"), "verb": _p("P R IY0 Z EH1 N T S")},
        (
            _cue("prev", DET | {"birthday", "christmas", "wedding", "open", "wrapped", "of", "with"}, "noun"),
            _cue("prev", THIRD | {"proudly", "also"}, "verb"),
            _cue("next", OBJ, "verb"),
        ),
        "noun",
    ),
    "objects": Homograph(
        {"noun": _p("AA1 B JH EH0 K T S"), "verb": _p("AH0 B JH EH1 K T S")},
        (
            _cue("prev", DET | {"of", "with", "small", "large", "sharp", "loose", "moving", "nearby", "unknown"}, "noun"),
            _cue("prev", THIRD | {"strongly"}, "verb"),
            _cue("next", "to", "verb"),
        ),
        "noun",
    ),
    "tears": Homograph(
        {"cry": _p("T IH1 R Z"), "rip": _p("T EH1 R Z")},
        (
            _cue("prev", DET | {"into", "in", "of", "with", "happy", "no"}, "cry"),
            _cue("prev", THIRD, "rip"),
            _cue("next", OBJ | {"up", "down", "off", "apart", "open", "through", "away"}, "rip"),
        ),
        "cry",
    ),
    "winds": Homograph(
        {"air": _p("W IH1 N D Z"), "turn": _p("W AY1 N D Z")},
        (
            _cue("prev", DET | set(_WIND_ADJ.split()) | {"of", "trade", "prevailing", "gale", "force"}, "air"),
            _cue("next", "through around along up down its back round past toward towards", "turn"),
            _cue("prev", THIRD | {"road", "path", "river", "trail", "route", "street", "track", "stream"}, "turn"),
        ),
        "air",
    ),
    "uses": Homograph(
        {"noun": _p("Y UW1 S IH0 Z"), "verb": _p("Y UW1 Z IH0 Z")},
        (
            _cue("prev", DET | {"many", "several", "multiple", "other", "various", "different", "possible", "its", "new"}, "noun"),
            _cue("next", "of for", "noun"),
        ),
        "verb",
    ),
}
"""Context rules per homograph; every reading is one of the word's CMUdict variants (a test checks)."""


def _homograph_reading(rule: Homograph, words: Sequence[str | None], i: int, sentence: range) -> str:
    """Pick a reading for ``words[i]``; None entries in ``words`` mark a comma (adjacency stops there)."""
    prev = words[i - 1] if i - 1 >= sentence.start else None
    prev2 = words[i - 2] if prev is not None and i - 2 >= sentence.start else None
    nxt = words[i + 1] if i + 1 < sentence.stop else None
    for cue in rule.cues:
        where = cue.where
        if where == "prev":
            hit = prev in cue.words
        elif where == "prev2":
            hit = prev2 in cue.words
        elif where == "next":
            hit = nxt in cue.words
        elif where == "ahead":
            hit = any(w in cue.words for w in words[i + 1 : min(i + 4, sentence.stop)])
        else:  # sentence
            hit = any(w in cue.words for w in words[sentence.start : sentence.stop])
        if hit:
            return cue.reading
    return rule.default


# ---------------------------------------------------------------------------------------------
# The G2P
# ---------------------------------------------------------------------------------------------


@dataclass
class G2PStats:
    """Counters for benchmarks and logs (not thread-exact; good enough for rates)."""

    words: int = 0
    """Words phonemized."""
    oov: int = 0
    """Words found neither in the lexicon nor by a suffix rule."""
    neural: int = 0
    """OOV words the neural model answered."""
    neural_s: float = 0.0
    """Seconds spent in the neural model."""
    spelled_oov: int = 0
    """OOV words spelled because no model could answer."""
    oov_words: dict[str, int] = field(default_factory=dict)
    """Up to 200 distinct OOV words with counts (for finding lexicon gaps)."""


class G2P:
    """Pronounces normalized words; holds no per-request state beyond a bounded memo."""

    def __init__(self, lexicon: Lexicon, neural: NeuralG2P | Predictor | None = None) -> None:
        self._lexicon = lexicon
        self._neural = neural
        self._memo: dict[str, tuple[str, ...]] = {}
        self.stats = G2PStats()

    @property
    def lexicon(self) -> Lexicon:
        """The pronunciation lexicon."""
        return self._lexicon

    @property
    def has_neural(self) -> bool:
        """True when unknown words go to the neural model rather than being spelled."""
        return self._neural is not None

    def phonemize(self, tokens: Sequence[Token]) -> list[tuple[Token, tuple[str, ...]]]:
        """Pair every token with its phonemes; breaks pass through with ()."""
        words: list[str | None] = [t.text if isinstance(t, Word) else None for t in tokens]
        out: list[tuple[Token, tuple[str, ...]]] = []
        sentence = range(0)
        for i, token in enumerate(tokens):
            if not isinstance(token, Word):
                out.append((token, ()))
                continue
            if i >= sentence.stop:
                sentence = _sentence_around(tokens, i)
            out.append((token, self._word_in_context(token, words, i, sentence)))
        self._fix_the(out)
        return out

    def word(self, text: str) -> tuple[str, ...]:
        """Pronounce one word with no context (lexicon first variant, suffixes, neural, spelling)."""
        memo = self._memo.get(text)
        if memo is not None:
            self.stats.words += 1
            return memo
        self.stats.words += 1
        result = self._lookup(text)
        if len(self._memo) >= _CACHE_LIMIT:
            self._memo.clear()
        self._memo[text] = result
        return result

    # -- internals ---------------------------------------------------------------------------

    def _word_in_context(self, token: Word, words: list[str | None], i: int, sentence: range) -> tuple[str, ...]:
        if token.phonemes is not None:
            self.stats.words += 1
            return tuple(p for p in token.phonemes if p in _VALID)
        text = token.text
        if token.spell:
            self.stats.words += 1
            return spell(text)
        rule = HOMOGRAPHS.get(text)
        if rule is not None:
            self.stats.words += 1
            reading = rule.readings[_homograph_reading(rule, words, i, sentence)]
            # Trust the table only when this lexicon really has the variant.
            if reading in self._lexicon.lookup(text):
                return reading
        return self.word(text)

    def _lookup(self, text: str) -> tuple[str, ...]:
        key = _fold(text)
        if not key:
            return ()
        if len(key) == 1 and key != "a":
            return LETTER_NAMES.get(key, ())
        found = self._lexicon.first(key) or self._derived(key)
        if found:
            return found
        self.stats.oov += 1
        if len(self.stats.oov_words) < 200 or key in self.stats.oov_words:
            self.stats.oov_words[key] = self.stats.oov_words.get(key, 0) + 1
        if self._neural is not None:
            start = time.perf_counter()
            try:
                predicted = tuple(p for p in self._neural.predict(key) if p in _VALID)
            except Exception:  # a broken model must not take the request down; spell instead
                _LOGGER.exception("neural G2P failed on %r; spelling it", key)
                predicted = ()
            finally:
                self.stats.neural_s += time.perf_counter() - start
            if predicted:
                self.stats.neural += 1
                return predicted
        self.stats.spelled_oov += 1
        return spell(key)

    def _derived(self, word: str) -> tuple[str, ...] | None:
        """Possessive and inflection fallbacks from a known stem; None when none applies."""
        lex = self._lexicon
        if word.endswith("'s") and len(word) > 2:
            base = lex.first(word[:-2]) or self._derived(word[:-2])
            return base + _sibilant_suffix(base) if base else None
        if word.endswith("s'") and len(word) > 2:
            return lex.first(word[:-1]) or self._derived(word[:-1])
        if "'" in word:
            return None
        if word.endswith("s") and len(word) > 4:
            for stem in _stems(word, "s"):
                found = lex.first(stem)
                if found:
                    return found + _sibilant_suffix(found)
        if word.endswith("ed") and len(word) > 4:
            for stem in _stems(word, "ed"):
                found = lex.first(stem)
                if found:
                    last = found[-1]
                    suffix = ("IH0", "D") if last in ("T", "D") else ("T",) if last in _VOICELESS else ("D",)
                    return found + suffix
        if word.endswith("ing") and len(word) > 5:
            for stem in _stems(word, "ing"):
                found = lex.first(stem)
                if found:
                    return found + ("IH0", "NG")
        return None

    def _fix_the(self, out: list[tuple[Token, tuple[str, ...]]]) -> None:
        """Say "the" as DH IY0 before a vowel sound, as most speakers do."""
        for i in range(len(out) - 1):
            token, symbols = out[i]
            if isinstance(token, Word) and token.text == "the" and token.phonemes is None and not token.spell:
                nxt_token, nxt = out[i + 1]
                if isinstance(nxt_token, Word) and nxt and is_vowel(nxt[0]) and "DH" in symbols:
                    out[i] = (token, ("DH", "IY0"))


_VOICELESS = frozenset(("P", "T", "K", "F", "TH"))
_SIBILANTS = frozenset(("S", "Z", "SH", "ZH", "CH", "JH"))


def _sibilant_suffix(stem: tuple[str, ...]) -> tuple[str, ...]:
    last = stem[-1]
    if last in _SIBILANTS:
        return ("IH0", "Z")
    return ("S",) if last in _VOICELESS else ("Z",)


def _stems(word: str, suffix: str) -> list[str]:
    """Candidate stems of ``word`` minus ``suffix``: plain, with an ``e`` back, undoubled, ``-ies`` → ``y``."""
    base = word[: -len(suffix)]
    stems = []
    if suffix == "s":
        if word.endswith("ies"):
            stems.append(word[:-3] + "y")
        if word.endswith("es"):
            stems.append(word[:-2])
        stems.append(base)
    else:
        stems.append(base)
        stems.append(base + "e")
        if len(base) > 2 and base[-1] == base[-2] and base[-1] not in "aeiouls":
            stems.append(base[:-1])
        if suffix == "ed" and base.endswith("i"):
            stems.append(base[:-1] + "y")
    return [s for s in stems if len(s) >= 3]


def spell(text: str) -> tuple[str, ...]:
    """Letter names of every letter and digit of ``text``; other characters are skipped."""
    out: list[str] = []
    for ch in _fold(text):
        out.extend(LETTER_NAMES.get(ch, ()))
    return tuple(out)


def _fold(text: str) -> str:
    """Lower-case ASCII letters, digits and apostrophes: accents stripped, anything else dropped."""
    if text.isascii():
        low = text.lower()
        if low.replace("'", "").isalnum() or not low:
            return low
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if (c.isascii() and (c.isalnum() or c == "'")))


def _sentence_around(tokens: Sequence[Token], i: int) -> range:
    """The token range of the sentence that starts at or before ``i`` and ends at the next sentence break."""
    start = i
    while start > 0 and not _is_sentence_break(tokens[start - 1]):
        start -= 1
    stop = i
    while stop < len(tokens) and not _is_sentence_break(tokens[stop]):
        stop += 1
    return range(start, stop)


def _is_sentence_break(token: Token) -> bool:
    return isinstance(token, Break) and token.mark in _SENTENCE_MARKS
