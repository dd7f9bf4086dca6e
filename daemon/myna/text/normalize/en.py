"""English normalization: written car and appliance prompts → spoken words with spans, and pauses.

How it works, and why it stays linear on any input:

1. One pass of ``_SPLIT`` cuts the text into whitespace-separated chunks (a phone number such as
   ``(555) 123-4567`` is one chunk although it holds a space).  Each chunk loses its leading openers
   and trailing punctuation; what is left is its *core*.
2. Each core is read by the first reader that recognizes it: time, date, fraction, range, currency,
   number (+ glued unit), web address, e-mail, road, abbreviation, word.  Readers may look at the
   neighbouring chunks ("300 m", "Dr. Smith", "January 5, 2027") and may consume following chunks.
   Patterns are matched with ``fullmatch`` on cores of at most ``_CAP`` code points; longer cores go
   to ``_generic``, which is a single linear tokenization, so a 100 kB line costs O(n).
3. Trailing punctuation becomes ``Break`` tokens; an abbreviation may swallow its own period.

Every ``Word`` carries the span of the written chunk (or the part of it) that it was read from.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable

from ...errors import InvalidText
from ..units import Break, Token, Word, WordSpan
from . import en_data as data
from . import numbers as num

_LOGGER = logging.getLogger(__name__)

_CAP = 64
"""Cores longer than this skip the pattern readers (bounded regex cost per chunk)."""
_URL_CAP = 256
"""Cores longer than this are not read as web or e-mail addresses."""

_PHONE = (
    r"(?:\+?1[-. ])?\([0-9]{3}\)[-. ]?[0-9]{3}[-. ][0-9]{4}"
    r"|\+[0-9]{1,3}(?:[ .-][0-9]{2,5}){1,5}"
    r"|\+[0-9]{7,15}"
    r"|(?:1-)?[0-9]{3}[-.][0-9]{3}[-.][0-9]{4}"
)
# Every alternative of a phone number is bounded, so trying it at each chunk start is O(1).
_SPLIT = re.compile(rf"(?P<phone>(?:{_PHONE})(?![0-9A-Za-z]))|\S+")

_NUM = r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+"
_NUMBER = re.compile(rf"(?P<sign>[-−+±~])?(?P<num>{_NUM})(?P<suf>.*)", re.DOTALL)
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?([AaPp]\.?[Mm]\.?)?")
_RATIO = re.compile(r"([0-9]{1,3}):([0-9]{1,3})")
_ISO_DATE = re.compile(r"([0-9]{4})([-/.])([0-9]{1,2})\2([0-9]{1,2})")
_NUM_DATE = re.compile(r"([0-9]{1,2})([-/.])([0-9]{1,2})\2([0-9]{4}|[0-9]{2})")
_SLASH = re.compile(r"([0-9]{1,3})/([0-9]{1,3})")
_RANGE = re.compile(rf"(?P<sign>[-−])?(?P<a>{_NUM})[-–—](?P<b>{_NUM})(?P<suf>.*)", re.DOTALL)
_LOCAL_PHONE = re.compile(r"[0-9]{3}-[0-9]{4}")
_CURRENCY = re.compile(rf"(?P<sign>[-−])?(?P<cur>US\$|[$€£¥₹])(?P<num>{_NUM})(?P<suf>.*)", re.DOTALL)
_DECADE = re.compile(r"(')?([0-9]{1,3}0)(')?s")
_HASH_NUMBER = re.compile(r"#([0-9]+)")
_DAY = re.compile(r"([0-9]{1,2})(?:st|nd|rd|th)?")
_YEAR = re.compile(r"[12][0-9]{3}")
_ORDINAL_CORE = re.compile(r"[0-9]+(?:st|nd|rd|th|ST|ND|RD|TH)")
_ROAD_NUMBER = re.compile(r"([0-9]{1,4})([A-Za-z])?")
_ROAD = re.compile(r"([A-Z]{1,2}|US|SR|CR|FM|Hwy|HWY|Rte)-([0-9]{1,4})([A-Za-z])?")
_WORDLIKE = re.compile(r"[^\W\d_]+(?:['’.][^\W\d_]+)*")
_INITIALISM = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")
_ROMAN = re.compile(r"M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,9}://")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_LABEL = re.compile(r"[A-Za-z0-9-]+")
_URL_ATOM = re.compile(r"[^\W\d_]+|[0-9]+|.", re.DOTALL)
_MARK = r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"
_LETTERS = rf"[^\W\d_](?:[^\W\d_]|{_MARK})*"
_ATOM = re.compile(rf"(?P<w>{_LETTERS}(?:['’]{_LETTERS})*)|(?P<d>[0-9]+)|(?P<o>.)", re.DOTALL)

_LEAD = frozenset("([{\"'“‘«¿¡*_<")
_LEAD_BREAKS = frozenset("([{")
_TAIL = frozenset(")]}\"'”’»,;:.?!…*。！？؟")
_APOSTROPHES = frozenset("'‘’")
_QUOTES = frozenset("\"'“”‘’«»")
_VOWELS = frozenset("AEIOUY")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
_AMPM_WORDS = {"am": ("=am",), "pm": ("=pm",)}
_NOT_YEAR_BEFORE = frozenset(
    """no number # exit route room apartment apt suite unit gate platform channel page line code pin
    station flight bus track seat model version step item lot box ext extension tel hwy highway
    interstate level floor program cycle""".split()
)
_SCALE_NEXT = frozenset({"thousand", "million", "billion", "trillion"})


def _split_words(value: str) -> tuple[str, ...]:
    return tuple(value.split())


_UNIT_WORDS = {key: (_split_words(one), _split_words(many)) for key, (one, many) in data.UNITS.items()}
_ABBR_WORDS = {key: (_split_words(said), period, role) for key, (said, period, role) in data.ABBREVIATIONS.items()}
_SPECIAL_WORDS = frozenset(
    {"Dr", "St", "No", "no", "NO"}
    | set(data.MONTH_OF)
    | set(data.MONTH_ABBR)
    | set(data.ROAD_PREFIXES)
    | set(data.ABBREVIATIONS)
    | set(data.DIRECTIONS)
    | set(data.AMPM)
)
"""Words that need context; every other plain word takes the fast path."""


class _Chunk:
    """One whitespace-separated piece of the text, split into openers, core and trailing marks."""

    __slots__ = ("core", "end", "initial", "lead", "phone", "start", "tail")

    def __init__(self, core: str, start: int, end: int, lead: str, tail: str, phone: bool) -> None:
        self.core = core
        self.start = start
        self.end = end
        self.lead = lead
        self.tail = tail
        self.phone = phone
        self.initial = False


def _chunks(text: str) -> tuple[list[_Chunk], bool]:
    """Cut the text into chunks; also tell whether it is written in capitals ("shouting")."""
    out: list[_Chunk] = []
    caps = lower = 0
    for match in _SPLIT.finditer(text):
        start, end = match.span()
        piece = match.group()
        if match.lastgroup == "phone":
            out.append(_Chunk(piece, start, end, "", "", True))
            continue
        i, j = 0, len(piece)
        while i < j and piece[i] in _LEAD:
            if piece[i] in _APOSTROPHES and i + 1 < j and piece[i + 1].isdigit():
                break  # '90s
            i += 1
        while j > i and piece[j - 1] in _TAIL:
            j -= 1
        core = piece[i:j]
        if core.isalpha():
            if core.isupper():
                caps += len(core) > 1
            else:
                lower += 1
        out.append(_Chunk(core, start + i, start + j, piece[:i], piece[j:], False))
    return out, caps >= 3 and caps > lower


def _fold(word: str) -> str:
    """Lower-case Latin letters without accents; other scripts vanish: 'Café' → 'cafe', 'Мир' → ''."""
    if word.isascii():
        return word.lower()
    decomposed = unicodedata.normalize("NFKD", word.translate(data.LETTER_FOLD))
    return "".join(c for c in decomposed if c.isascii() and (c.isalpha() or c == "'")).lower()


def _roman_value(text: str) -> int:
    total = 0
    for k, c in enumerate(text):
        value = _ROMAN_VALUES[c]
        if k + 1 < len(text) and _ROMAN_VALUES[text[k + 1]] > value:
            total -= value
        else:
            total += value
    return total


def _is_title(word: str) -> bool:
    """A capitalized word such as a name: "Smith", "Mary's" (not "USB", not "smith")."""
    if word.endswith(("'s", "’s")):
        word = word[:-2]
    return len(word) > 1 and word[0].isupper() and word[1:].islower() and word.isalpha()


def _valid_date(month: int, day: int) -> bool:
    return 1 <= month <= 12 and 1 <= day <= 31


class _Run:
    """The state of one ``tokens`` call: the chunks, the output, and where roads ended."""

    def __init__(self, norm: EnglishNormalizer, text: str, base: int) -> None:
        self.norm = norm
        self.say_and = norm.say_and
        self.base = base
        self.chunks, self.shouting = _chunks(text)
        self.toks: list[Token] = []
        self.road_end = -2

    # ----------------------------------------------------------------------------- output

    def span(self, start: int, end: int) -> WordSpan:
        return WordSpan(self.base + start, end - start)

    def say(self, words: Iterable[str], start: int, end: int) -> None:
        """Append spoken words sharing one span; a word "=abc" is spelled a, b, c."""
        span = WordSpan(self.base + start, end - start)
        toks = self.toks
        for word in words:
            if not word:
                continue
            if word[0] == "=":
                toks.extend(Word(letter, span, spell=True) for letter in word[1:].lower())
            else:
                toks.append(Word(word, span))

    def spell(self, letters: str, start: int, end: int) -> None:
        span = WordSpan(self.base + start, end - start)
        self.toks.extend(Word(c, span, spell=True) for c in letters.lower() if "a" <= c <= "z")

    def pause(self, mark: str, pos: int) -> None:
        """Append a pause; consecutive pauses merge, the stronger (sentence) one winning."""
        toks = self.toks
        if not toks:
            return  # nothing said yet: a leading pause means nothing
        last = toks[-1]
        if isinstance(last, Break):
            if last.mark == "," and mark != ",":
                toks[-1] = Break(mark, WordSpan(self.base + pos, 1))
            return
        toks.append(Break(mark, WordSpan(self.base + pos, 1)))

    def at_sentence_start(self) -> bool:
        if not self.toks:
            return True
        last = self.toks[-1]
        return isinstance(last, Break) and last.mark != ","

    # ----------------------------------------------------------------------------- driver

    def run(self) -> list[Token]:
        chunks = self.chunks
        count = len(chunks)
        i = 0
        while i < count:
            chunk = chunks[i]
            chunk.initial = self.at_sentence_start()
            if chunk.lead:
                base = chunk.start - len(chunk.lead)
                for k, c in enumerate(chunk.lead):
                    if c in _LEAD_BREAKS:
                        self.pause(",", base + k)
            skip_period = False
            if chunk.core:
                mark = len(self.toks)
                try:
                    i, skip_period = self.read(i)
                # A reader bug must never cost the whole prompt: log it and read the chunk plainly.
                except Exception:
                    _LOGGER.warning("normalizer failed on %r; reading it plainly", chunk.core, exc_info=True)
                    del self.toks[mark:]
                    try:
                        self.generic(chunk.core, chunk.start)
                    except Exception:  # noqa: BLE001
                        del self.toks[mark:]  # unreadable even plainly: the chunk is skipped
                chunk = chunks[i]
            for k, c in enumerate(chunk.tail):
                if k == 0 and skip_period:
                    continue
                sentence = data.SENTENCE_MARKS.get(c)
                if sentence:
                    self.pause(sentence, chunk.end + k)
                elif c in data.CLAUSE_MARKS:
                    self.pause(",", chunk.end + k)
            i += 1
        return self.toks

    def read(self, i: int) -> tuple[int, bool]:
        """Read chunk ``i`` (and maybe the chunks after it); return the last one read and whether
        its trailing period was an abbreviation's own."""
        chunk = self.chunks[i]
        core = chunk.core
        if chunk.phone:
            self.phone(chunk)
            return i, False
        if len(core) > _URL_CAP:
            self.generic(core, chunk.start)
            return i, False
        if core.isalpha():
            return self.word(i)
        if ("." in core or "@" in core or "/" in core) and self.address(chunk):
            return i, False
        if len(core) > _CAP:
            self.generic(core, chunk.start)
            return i, False
        first = core[0]
        if first.isdigit() or first in "-−+±~$€£¥₹'#." or core.startswith("US$"):
            done = self.number(i)
            if done is not None:
                return done
        if _WORDLIKE.fullmatch(core):
            return self.word(i)
        match = _ROAD.fullmatch(core)
        if match:
            prefix, number, letter = match.groups()
            said = data.ROAD_PREFIXES.get(prefix, ("=" + prefix,))
            self.say(said + num.road(int(number)) + (("=" + letter,) if letter else ()), chunk.start, chunk.end)
            self.road_end = i
            return i, False
        self.generic(core, chunk.start)
        return i, False

    # ----------------------------------------------------------------------------- context helpers

    def glued_next(self, i: int) -> _Chunk | None:
        """The next chunk if nothing but spaces separates it from chunk ``i``."""
        if i + 1 >= len(self.chunks):
            return None
        nxt = self.chunks[i + 1]
        if self.chunks[i].tail or nxt.lead or nxt.phone or not nxt.core:
            return None
        return nxt

    def glued_prev(self, i: int) -> _Chunk | None:
        if i == 0:
            return None
        prev = self.chunks[i - 1]
        if prev.tail or self.chunks[i].lead or not prev.core:
            return None
        return prev

    def prev_is_name(self, i: int) -> bool:
        """The chunk before is part of a name: "Main" St., "Elm" Dr., "42nd" St. (not sentence-initial)."""
        prev = self.glued_prev(i)
        if prev is None:
            return False
        if _ORDINAL_CORE.fullmatch(prev.core) or prev.core.isdigit():
            return True
        return not prev.initial and prev.core[:1].isupper() and prev.core.isalpha()

    def next_is_name(self, i: int) -> bool:
        chunk = self.chunks[i]
        if chunk.tail not in ("", "."):
            return False
        if i + 1 >= len(self.chunks):
            return False
        nxt = self.chunks[i + 1]
        return not nxt.lead and _is_title(nxt.core)

    def period_ends_sentence(self, i: int, role: str) -> bool:
        """Whether the period after an abbreviation also ends the sentence."""
        chunk = self.chunks[i]
        if len(chunk.tail) > 1:
            return False  # "etc.)" — the marks after it make the pause
        if i + 1 >= len(self.chunks):
            return True
        if role == "before":
            return False
        nxt = self.chunks[i + 1]
        if nxt.core in data.STREET_SUFFIXES or nxt.core in ("Jr", "Sr"):
            return False
        first = (nxt.lead or nxt.core)[:1]
        return first.isupper() or first in _QUOTES

    def abbreviation_done(self, i: int, role: str) -> tuple[int, bool]:
        """Finish an abbreviation at chunk ``i``: swallow its period unless it ends the sentence."""
        chunk = self.chunks[i]
        has_period = chunk.tail.startswith(".")
        return i, has_period and not self.period_ends_sentence(i, role)

    # ----------------------------------------------------------------------------- words

    def word(self, i: int) -> tuple[int, bool]:
        chunk = self.chunks[i]
        core = chunk.core
        if core in _SPECIAL_WORDS:
            done = self.special_word(i)
            if done is not None:
                return done
        elif "." in core:
            if core in data.ABBREVIATIONS or core in data.AMPM:
                done = self.special_word(i)
                if done is not None:
                    return done
            if _INITIALISM.fullmatch(core):
                self.spell(core, chunk.start, chunk.end)
                return self.abbreviation_done(i, "after")
            self.generic(core, chunk.start)
            return i, False
        if core.isupper() and core.isalpha():
            value = self.roman(i)
            if value is not None:
                self.say(value, chunk.start, chunk.end)
                return i, False
        self.plain(core, chunk.start, chunk.end)
        return i, False

    def special_word(self, i: int) -> tuple[int, bool] | None:
        chunk = self.chunks[i]
        core = chunk.core
        start, end = chunk.start, chunk.end
        has_period = chunk.tail.startswith(".")
        if core == "Dr":
            # "Dr. Smith" (doctor) vs "Elm Dr." (drive): a name after it wins unless a name precedes.
            if self.prev_is_name(i):
                doctor = False
            elif self.next_is_name(i):
                doctor = True
            else:
                prev = self.glued_prev(i)
                doctor = prev is None or not _is_title(prev.core)
            self.say(("doctor",) if doctor else ("drive",), start, end)
            return self.abbreviation_done(i, "before" if doctor else "after")
        if core == "St":
            saint = not self.prev_is_name(i) and self.next_is_name(i)
            self.say(("saint",) if saint else ("street",), start, end)
            return self.abbreviation_done(i, "before" if saint else "after")
        if core in ("No", "no", "NO") and (has_period or core == "No"):
            nxt = self.chunks[i + 1] if i + 1 < len(self.chunks) else None
            if nxt is not None and chunk.tail in ("", ".") and not nxt.lead and nxt.core[:1].isdigit():
                self.say(("number",), start, end)
                return i, has_period
        month = data.MONTH_OF.get(core) or data.MONTH_ABBR.get(core)
        if month:
            done = self.month_date(i, month)
            if done is not None:
                return done, False
        if core in data.ROAD_PREFIXES and core != "I":
            nxt = self.glued_next(i)
            match = _ROAD_NUMBER.fullmatch(nxt.core) if nxt else None
            if nxt and match:
                letter = match.group(2)
                self.say(data.ROAD_PREFIXES[core], start, end)
                said = num.road(int(match.group(1))) + (("=" + letter,) if letter else ())
                self.say(said, nxt.start, nxt.end)
                self.road_end = i + 1
                return i + 1, False
        abbreviation = _ABBR_WORDS.get(core)
        if abbreviation and (has_period or abbreviation[1] == "optional"):
            said, _, role = abbreviation
            if core in data.MONTH_ABBR and not has_period:
                return None
            self.say(said, start, end)
            return self.abbreviation_done(i, role)
        ampm = data.AMPM.get(core)
        if ampm and "." in core:
            self.say(_AMPM_WORDS[ampm], start, end)
            return self.abbreviation_done(i, "after")
        direction = data.DIRECTIONS.get(core)
        if direction and chunk.tail in ("", "."):
            nxt = self.chunks[i + 1] if i + 1 < len(self.chunks) else None
            before_street = (
                nxt is not None and not nxt.lead and (nxt.core[:1].isupper() or nxt.core[:1].isdigit())
            )
            if self.road_end == i - 1 or before_street:
                self.say((direction,), start, end)
                return self.abbreviation_done(i, "after" if self.road_end == i - 1 else "before")
        return None

    def roman(self, i: int) -> tuple[str, ...] | None:
        """Read an all-caps chunk as a Roman numeral when its context says so."""
        core = self.chunks[i].core
        if not _ROMAN.fullmatch(core):
            return None
        prev = self.glued_prev(i)
        if prev is None:
            return None
        if prev.core.lower() in data.ROMAN_KEYWORDS:
            return num.cardinal(_roman_value(core))
        if prev.core in data.REGNAL_NAMES or (
            not prev.initial and _is_title(prev.core) and len(core) > 1 and not core.strip("IVX")
        ):
            return ("the",) + num.ordinal(_roman_value(core))
        return None

    def plain(self, word: str, start: int, end: int) -> None:
        """Read a word without context: fold it, or spell it if it is an acronym."""
        if "’" in word or "‘" in word:
            word = word.replace("’", "'").replace("‘", "'")
        if word.islower():
            if len(word) == 1 and word in "ai":
                self.say((word,), start, end)
            elif len(word) == 1 and word.isascii():
                self.spell(word, start, end)
            else:
                folded = _fold(word)
                if folded:
                    self.say((folded,), start, end)
            return
        if word.isupper():
            self.caps(word, start, end)
            return
        base, apostrophe, suffix = word.partition("'")
        if apostrophe and len(base) > 1 and base.isupper():
            self.caps(base, start, end)  # "BMW's" → b m w s
            if suffix.lower() == "s":
                self.spell("s", start, end)
            return
        if len(word) > 2 and word[-1] == "s" and word[:-1].isupper() and word[:-1].isalpha():
            self.spell(word, start, end)  # plural acronym: "LEDs" → l e d s
            return
        folded = _fold(word)
        if folded:
            self.say((folded,), start, end)

    def caps(self, word: str, start: int, end: int) -> None:
        base, _, suffix = word.partition("'")
        if suffix:  # "BMW's"
            self.caps(base, start, end)
            if suffix.lower() == "s":
                self.spell("s", start, end)
            return
        if not word.isascii():
            folded = _fold(word)
            if folded:
                self.say((folded,), start, end)
            return
        if len(word) == 1:
            if word in "IA":
                self.say((word.lower(),), start, end)
            else:
                self.spell(word, start, end)
            return
        if word == "OK":
            self.say(("okay",), start, end)
        elif word in data.KNOWN_SPELLED:
            self.spell(word, start, end)
        elif word in data.SPOKEN_ACRONYMS or word in data.CAPS_WORDS:
            self.say((word.lower(),), start, end)
        elif self.shouting:
            if _VOWELS.isdisjoint(word) and len(word) <= 5:
                self.spell(word, start, end)
            else:
                self.say((word.lower(),), start, end)
        elif len(word) <= 5:
            self.spell(word, start, end)
        else:
            self.say((word.lower(),), start, end)

    def month_date(self, i: int, month: int) -> int | None:
        """"January 5, 2027", "Jan. 5th", "January 2027" → the last chunk read, or None."""
        chunk = self.chunks[i]
        abbreviated = chunk.core in data.MONTH_ABBR
        if chunk.tail not in ("", ".") or (chunk.tail == "." and not abbreviated):
            return None
        if i + 1 >= len(self.chunks):
            return None
        day_chunk = self.chunks[i + 1]
        if day_chunk.lead or day_chunk.phone:
            return None
        day = _DAY.fullmatch(day_chunk.core)
        name = (data.MONTHS[month - 1],)
        if day and 1 <= int(day.group(1)) <= 31:
            self.say(name, chunk.start, chunk.end)
            self.say(num.ordinal(int(day.group(1))), day_chunk.start, day_chunk.end)
            last = i + 1
            if day_chunk.tail in ("", ",") and i + 2 < len(self.chunks):
                year_chunk = self.chunks[i + 2]
                if not year_chunk.lead and _YEAR.fullmatch(year_chunk.core):
                    self.say(num.year(int(year_chunk.core)), year_chunk.start, year_chunk.end)
                    last = i + 2
                elif day_chunk.tail == ",":
                    return last  # the comma of "January 5, then" is swallowed by the date
            return last
        if not abbreviated and not chunk.tail and _YEAR.fullmatch(day_chunk.core):
            self.say(name, chunk.start, chunk.end)
            self.say(num.year(int(day_chunk.core)), day_chunk.start, day_chunk.end)
            return i + 1
        return None

    # ----------------------------------------------------------------------------- numbers

    def number_words(self, text: str, year_ok: bool) -> tuple[tuple[str, ...], bool]:
        """Read a number string; the flag tells whether it is exactly one (for singular units)."""
        if "." in text:
            int_part, frac = text.split(".", 1)
            return num.decimal(int_part, frac, self.say_and), False
        if year_ok and len(text) == 4 and _YEAR.fullmatch(text):
            value = int(text)
            if 1000 <= value <= 2099:
                return num.year(value), False
        if text in data.EMERGENCY_NUMBERS:
            return num.digits(text), False
        return num.integer(text, self.say_and), text == "1"

    def year_allowed(self, i: int) -> bool:
        prev = self.glued_prev(i)
        return prev is None or prev.core.lower() not in _NOT_YEAR_BEFORE

    def singular_context(self, i: int) -> bool:
        """'a 12 V battery': after an article a measure is an adjective and its unit singular."""
        prev = self.glued_prev(i)
        return prev is not None and prev.core in data.ARTICLES

    def unit_after(self, i: int) -> _Chunk | None:
        """The chunk after number chunk ``i`` if it is a unit written apart: "300 m", "-5 °C"."""
        nxt = self.glued_next(i)
        if nxt is None or nxt.core not in _UNIT_WORDS:
            return None
        if nxt.core in data.AMBIGUOUS_SEPARATE:
            after = self.chunks[i + 2] if i + 2 < len(self.chunks) else None
            if nxt.tail == "" and after is not None and after.core.lower() not in data.INCH_CONTEXT:
                return None
        if nxt.core in data.DIRECTIONS and i + 2 < len(self.chunks) and _is_title(self.chunks[i + 2].core):
            return None  # "5 W Main St": a direction, not watts
        return nxt

    def say_unit(self, unit: str, one: bool, start: int, end: int, of_a: bool = False) -> None:
        singular, plural = _UNIT_WORDS[unit]
        if of_a:
            self.say(("of", "a") + singular, start, end)
        else:
            self.say(singular if one else plural, start, end)

    def unit_done(self, j: int, unit: str) -> tuple[int, bool]:
        """A unit written like an abbreviation ("min.", "ft.") may swallow its period."""
        chunk = self.chunks[j]
        if unit[-1:].isalpha() and chunk.tail.startswith("."):
            return self.abbreviation_done(j, "after")
        return j, False

    def number(self, i: int) -> tuple[int, bool] | None:
        """Read a chunk that starts like a number; None hands it to the generic reader."""
        chunk = self.chunks[i]
        core, start, end = chunk.core, chunk.start, chunk.end
        say_and = self.say_and

        match = _TIME.fullmatch(core)
        if match:
            return self.time(i, match)
        match = _ISO_DATE.fullmatch(core)
        if match and _valid_date(int(match.group(3)), int(match.group(4))):
            y, mo, d = int(match.group(1)), int(match.group(3)), int(match.group(4))
            self.say(self.date_words(y, mo, d, self.norm.day_first), start, end)
            return i, False
        match = _NUM_DATE.fullmatch(core)
        if match:
            a, sep, b, yy = int(match.group(1)), match.group(2), int(match.group(3)), match.group(4)
            day_first = self.norm.day_first or sep == "."
            mo, d = (b, a) if day_first else (a, b)
            if not _valid_date(mo, d) and _valid_date(d, mo):
                mo, d, day_first = d, mo, not day_first
            if _valid_date(mo, d):
                year = int(yy) if len(yy) == 4 else None
                words = self.date_words(year, mo, d, day_first)
                if len(yy) == 2:  # "1/5/27" → january fifth twenty seven; "/05" → oh five
                    words += ("oh", num.DIGIT_WORDS[yy[1]]) if yy[0] == "0" else num.cardinal(int(yy))
                self.say(words, start, end)
                return i, False
        if core == "24/7":
            self.say(("twenty", "four", "seven"), start, end)
            return i, False
        match = _SLASH.fullmatch(core)
        if match:
            return self.slash(i, int(match.group(1)), int(match.group(2)))
        match = _RATIO.fullmatch(core)
        if match:
            self.say(num.cardinal(int(match.group(1))) + ("to",) + num.cardinal(int(match.group(2))), start, end)
            return i, False
        if _LOCAL_PHONE.fullmatch(core):
            self.say(num.digits(core), start, end)
            return i, False
        match = _RANGE.fullmatch(core)
        if match:
            return self.range(i, match)
        match = _CURRENCY.fullmatch(core)
        if match:
            return self.currency(i, data.CURRENCY[match.group("cur")], match.group("sign"), match.group("num"),
                                 match.group("suf"))  # fmt: skip
        match = _DECADE.fullmatch(core)
        if match:
            lead, value, apostrophe = match.groups()
            prev = self.glued_prev(i)
            if lead or apostrophe or len(value) == 4 or (prev is not None and prev.core.lower() in
                                                         data.DECADE_LEAD_WORDS):  # fmt: skip
                self.say(num.decade(int(value)), start, end)
                return i, False
        match = _HASH_NUMBER.fullmatch(core)
        if match:
            self.say(("number",) + num.integer(match.group(1), say_and), start, end)
            return i, False
        match = _NUMBER.fullmatch(core)
        if not match:
            return None
        sign, text, suffix = match.group("sign"), match.group("num"), match.group("suf")
        signed: tuple[str, ...] = ()
        if sign:
            signed = {"+": ("plus",), "±": ("plus", "or", "minus"), "~": ("about",)}.get(sign, ("minus",))
        if not suffix:
            return self.bare_number(i, signed, text)
        if suffix in data.ORDINAL_SUFFIXES and text.isdigit():
            done = self.day_month(i, int(text))
            if done is not None:
                return done, False
            self.say(signed + num.ordinal(int(text), say_and), start, end)
            return i, False
        if suffix in _UNIT_WORDS and suffix not in data.ATTACHED_ONLY_WITH_SPACE:
            words, one = self.number_words(text, year_ok=False)
            self.say(signed + words, start, end)
            self.say_unit(suffix, one or self.singular_context(i), start, end)
            return self.unit_done(i, suffix)
        if suffix[0] == "-" and suffix[1:] in _UNIT_WORDS:  # "a 12-V battery": compound, singular
            words, _ = self.number_words(text, year_ok=False)
            self.say(signed + words, start, end)
            self.say_unit(suffix[1:], True, start, end)
            return i, False
        if suffix in data.CURRENCY:  # "20€"
            return self.currency(i, data.CURRENCY[suffix], sign, text, "")
        if suffix in data.BARE_SCALES:
            words, _ = self.number_words(text, year_ok=False)
            self.say(signed + words + (data.BARE_SCALES[suffix],), start, end)
            return i, False
        ampm = data.AMPM.get(suffix)
        if ampm and text.isdigit():
            self.say(signed + num.cardinal(int(text)) + _AMPM_WORDS[ampm], start, end)
            return self.abbreviation_done(i, "after")
        if suffix in ("x", "×") and not sign:
            words, _ = self.number_words(text, year_ok=False)
            self.say(words + ("times",), start, end)
            return i, False
        return None

    def bare_number(self, i: int, signed: tuple[str, ...], text: str) -> tuple[int, bool]:
        """A number chunk with nothing glued to it; the next chunk may be its unit, "PM", a month..."""
        chunk = self.chunks[i]
        start, end = chunk.start, chunk.end
        unit = self.unit_after(i)
        if unit is not None:
            words, one = self.number_words(text, year_ok=False)
            self.say(signed + words, start, end)
            self.say_unit(unit.core, one or self.singular_context(i), unit.start, unit.end)
            return self.unit_done(i + 1, unit.core)
        nxt = self.glued_next(i)
        if nxt is not None and text.isdigit() and not signed:
            value = int(text)
            ampm = data.AMPM.get(nxt.core)
            if ampm and value <= 24:
                self.say(num.cardinal(value), start, end)
                self.say(_AMPM_WORDS[ampm], nxt.start, nxt.end)
                return self.abbreviation_done(i + 1, "after")
            done = self.day_month(i, value)
            if done is not None:
                return done, False
            if nxt.core in data.CURRENCY:  # "20 EUR", "5 €"
                self.currency(i, data.CURRENCY[nxt.core], None, text, "")
                self.toks_respan(nxt)
                return i + 1, False
            fraction = _SLASH.fullmatch(nxt.core)
            if fraction and int(fraction.group(1)) < int(fraction.group(2)) and int(fraction.group(2)) <= 100:
                self.say(num.integer(text, self.say_and) + ("and",), start, end)
                self.say(num.fraction(int(fraction.group(1)), int(fraction.group(2))), nxt.start, nxt.end)
                unit = self.unit_after(i + 1)
                if unit is not None:
                    self.say_unit(unit.core, False, unit.start, unit.end)
                    return self.unit_done(i + 2, unit.core)
                return i + 1, False
        words, _ = self.number_words(text, year_ok=not signed and self.year_allowed(i))
        self.say(signed + words, start, end)
        return i, False

    def toks_respan(self, chunk: _Chunk) -> None:
        """Move the last word (a currency name read early) onto the chunk it was written in."""
        last = self.toks[-1]
        if isinstance(last, Word):
            self.toks[-1] = Word(last.text, self.span(chunk.start, chunk.end))

    def day_month(self, i: int, day: int) -> int | None:
        """"5 January 2027", "5th of January" → the fifth of january twenty twenty seven."""
        chunk = self.chunks[i]
        nxt = self.glued_next(i)
        if nxt is None or not 1 <= day <= 31:
            return None
        month = data.MONTH_OF.get(nxt.core) or (data.MONTH_ABBR.get(nxt.core) if nxt.tail in ("", ".") else None)
        if not month:
            return None
        self.say(("the",) + num.ordinal(day) + ("of",), chunk.start, chunk.end)
        self.say((data.MONTHS[month - 1],), nxt.start, nxt.end)
        last = i + 1
        if nxt.tail in ("", ",", ".") and i + 2 < len(self.chunks):
            year_chunk = self.chunks[i + 2]
            if not year_chunk.lead and _YEAR.fullmatch(year_chunk.core):
                self.say(num.year(int(year_chunk.core)), year_chunk.start, year_chunk.end)
                last = i + 2
        return last

    def date_words(self, year: int | None, month: int, day: int, day_first: bool) -> tuple[str, ...]:
        name = data.MONTHS[month - 1]
        head = ("the",) + num.ordinal(day) + ("of", name) if day_first else (name,) + num.ordinal(day)
        return head + (num.year(year) if year is not None else ())

    def time(self, i: int, match: re.Match[str]) -> tuple[int, bool]:
        chunk = self.chunks[i]
        hours, minutes, seconds, ampm = match.groups()
        h, m = int(hours), int(minutes)
        if seconds is not None:
            s = int(seconds)
            words: tuple[str, ...] = ()
            for value, one, many in ((h, "hour", "hours"), (m, "minute", "minutes"), (s, "second", "seconds")):
                if value:
                    words += num.cardinal(value) + ((one,) if value == 1 else (many,))
            self.say(words or ("zero", "seconds"), chunk.start, chunk.end)
            return i, False
        suffix = ("am" if ampm[0] in "Aa" else "pm") if ampm else None
        last = i
        nxt = self.glued_next(i)
        separate = suffix is None and nxt is not None and nxt.core in data.AMPM
        if separate:
            assert nxt is not None
            suffix = data.AMPM[nxt.core]
            last = i + 1
        if m == 0:
            if suffix:
                words = num.cardinal(h)
            elif 1 <= h <= 12:
                words = num.cardinal(h) + ("o'clock",)
            else:
                words = num.cardinal(h) + ("hundred",)
        elif m < 10:
            words = num.cardinal(h) + ("oh", num.DIGIT_WORDS[minutes[1]])
        else:
            words = num.cardinal(h) + num.cardinal(m)
        if suffix and not separate:
            words += _AMPM_WORDS[suffix]
        self.say(words, chunk.start, chunk.end)
        if separate:
            assert nxt is not None
            self.say(_AMPM_WORDS[suffix or "am"], nxt.start, nxt.end)
        if suffix:
            return self.abbreviation_done(last, "after")
        return last, False

    def slash(self, i: int, a: int, b: int) -> tuple[int, bool]:
        """"1/2" one half, "11/26" november twenty sixth, "50/60" fifty slash sixty."""
        chunk = self.chunks[i]
        if 2 <= b <= 10 or b in (16, 32, 64, 100):
            proper = a < b
            self.say(num.fraction(a, b), chunk.start, chunk.end)
            unit = self.unit_after(i)
            if unit is not None:
                self.say_unit(unit.core, a == 1 and not proper, unit.start, unit.end, of_a=proper)
                return self.unit_done(i + 1, unit.core)
            return i, False
        mo, d = (b, a) if self.norm.day_first else (a, b)
        if _valid_date(mo, d):
            self.say(self.date_words(None, mo, d, self.norm.day_first), chunk.start, chunk.end)
            return i, False
        self.say(num.cardinal(a) + ("slash",) + num.cardinal(b), chunk.start, chunk.end)
        return i, False

    def range(self, i: int, match: re.Match[str]) -> tuple[int, bool] | None:
        """"5-10" five to ten (also scores, "3-2"); years "1990-1995" read as years."""
        chunk = self.chunks[i]
        a, b, suffix = match.group("a"), match.group("b"), match.group("suf")
        signed: tuple[str, ...] = ("minus",) if match.group("sign") else ()
        years = not suffix and not signed and _YEAR.fullmatch(a) is not None and _YEAR.fullmatch(b) is not None
        first, _ = self.number_words(a, year_ok=years)
        second, one = self.number_words(b, year_ok=years)
        prev = self.glued_prev(i)
        joint = "and" if prev is not None and prev.core.lower() == "between" else "to"
        words = signed + first + (joint,) + second
        if not suffix:
            self.say(words, chunk.start, chunk.end)
            unit = self.unit_after(i)
            if unit is not None:
                self.say_unit(unit.core, one, unit.start, unit.end)
                return self.unit_done(i + 1, unit.core)
            return i, False
        if suffix in _UNIT_WORDS and suffix not in data.ATTACHED_ONLY_WITH_SPACE:
            self.say(words, chunk.start, chunk.end)
            self.say_unit(suffix, one, chunk.start, chunk.end)
            return self.unit_done(i, suffix)
        ampm = data.AMPM.get(suffix)
        if ampm:
            self.say(words + _AMPM_WORDS[ampm], chunk.start, chunk.end)
            return i, False
        return None

    def currency(
        self, i: int, names: tuple[str, str, str, str], sign: str | None, text: str, suffix: str
    ) -> tuple[int, bool] | None:
        """"$1,234.56" one thousand two hundred thirty four dollars and fifty six cents; "$2.5M"."""
        chunk = self.chunks[i]
        one_major, many_major, one_minor, many_minor = names
        say_and = self.say_and
        words: tuple[str, ...] = ("minus",) if sign else ()
        last = i
        scale = data.SCALE_WORDS.get(suffix) if suffix else None
        if suffix and scale is None:
            return None
        if scale is None:
            nxt = self.glued_next(i)
            if nxt is not None and nxt.core.lower() in _SCALE_NEXT:
                scale = nxt.core.lower()
                last = i + 1
        if scale is not None:
            number, _ = self.number_words(text, year_ok=False)
            if last == i:
                self.say(words + number + (scale, many_major), chunk.start, chunk.end)
            else:
                nxt_chunk = self.chunks[last]
                self.say(words + number, chunk.start, chunk.end)
                self.say((scale, many_major), nxt_chunk.start, nxt_chunk.end)
            return last, False
        int_part, _, frac = text.partition(".")
        if frac and len(frac) == 2 and one_minor:
            major = int(int_part.replace(",", "") or "0")
            minor = int(frac)
            if major:
                words += num.integer(int_part, say_and) + ((one_major,) if major == 1 else (many_major,))
            if minor:
                words += (("and",) if major else ()) + num.cardinal(minor, say_and)
                words += (one_minor,) if minor == 1 else (many_minor,)
            if not major and not minor:
                words += ("zero", many_major)
        elif frac:
            words += num.decimal(int_part, frac, say_and) + (many_major,)
        else:
            words += num.integer(int_part, say_and) + ((one_major,) if int_part == "1" else (many_major,))
        self.say(words, chunk.start, chunk.end)
        return i, False

    # ----------------------------------------------------------------------------- other readers

    def phone(self, chunk: _Chunk) -> None:
        """Phone numbers digit by digit, each group keeping its own span: "+1 555 0100"."""
        for match in re.finditer(r"\+|[0-9]+", chunk.core):
            a, b = chunk.start + match.start(), chunk.start + match.end()
            self.say(("plus",) if match.group() == "+" else num.digits(match.group()), a, b)

    def address(self, chunk: _Chunk) -> bool:
        """Read a web or e-mail address if the chunk is one: "www.example.com/help", "a.b@c.org"."""
        core = chunk.core
        if "@" in core:
            if not _EMAIL.fullmatch(core):
                return False
            self.read_address(core, chunk.start, chunk.end)
            return True
        scheme = _SCHEME.match(core)
        rest = core[scheme.end() :] if scheme else core
        if not scheme and not rest.lower().startswith("www."):
            host = rest.split("/", 1)[0]
            labels = host.split(".")
            if len(labels) < 2 or labels[-1] not in data.TLDS:
                return False
            if not all(_LABEL.fullmatch(label) for label in labels) or not labels[0][:1].isalpha():
                return False
        # The scheme is not read: "https://example.com" is said "example dot com".
        self.read_address(rest.rstrip("/"), chunk.start, chunk.end)
        return True

    def read_address(self, text: str, start: int, end: int) -> None:
        words: list[str] = []
        for match in _URL_ATOM.finditer(text):
            part = match.group()
            if part.isdigit():
                words.extend(num.digits(part))
            elif part[0].isalpha():
                low = _fold(part)
                if not low:
                    continue
                if low in data.URL_WORDS:
                    words.extend(data.URL_WORDS[low])
                elif (len(low) <= 2 and low in data.TLDS) or low == "www" or not any(v in low for v in "aeiouy"):
                    words.append("=" + low)
                else:
                    words.append(low)
            else:
                words.extend(data.URL_SYMBOLS.get(part, ()))
        self.say(words, start, end)

    def generic(self, text: str, offset: int) -> None:
        """Read anything else atom by atom (letters, digits, symbols) in one linear pass."""
        atoms = [(m.lastgroup, m.group(), m.start() + offset, m.end() + offset) for m in _ATOM.finditer(text)]
        count = len(atoms)
        for k, (kind, part, a, b) in enumerate(atoms):
            prev_kind = atoms[k - 1][0] if k else None
            next_kind = atoms[k + 1][0] if k + 1 < count else None
            if kind == "w":
                if prev_kind == "d" and part in _UNIT_WORDS and part not in data.ATTACHED_ONLY_WITH_SPACE:
                    self.say_unit(part, atoms[k - 1][1] == "1", a, b)
                elif part in ("x", "X") and prev_kind == "d" and next_kind == "d":
                    self.say(("by",), a, b)
                elif prev_kind == "d" or next_kind == "d":
                    if len(part) <= 3 or part.isupper():
                        self.spell(_fold(part), a, b)  # "MP3", "23B", "v2"
                    else:
                        self.plain(part, a, b)
                else:
                    self.plain(part, a, b)
            elif kind == "d":
                if prev_kind == "o" and atoms[k - 1][1] == "." and k >= 2 and atoms[k - 2][0] == "d":
                    self.say(num.digits(part), a, b)  # after "point"
                else:
                    self.say(num.integer(part, self.say_and), a, b)
            else:
                prev_word = atoms[k - 1][1] if prev_kind == "w" else ""
                nxt = atoms[k + 1][1] if next_kind else ""
                self.symbol(part, a, prev_kind, next_kind, prev_word, nxt, count == 1)

    def symbol(
        self, c: str, pos: int, prev_kind: str | None, next_kind: str | None, prev_word: str, nxt: str, alone: bool
    ) -> None:
        """Read one symbol of a generic chunk, knowing the kinds of the atoms around it."""
        if c == ".":
            if prev_kind == "d" and next_kind == "d":
                self.say(("point",), pos, pos + 1)
            elif prev_kind == "w" and next_kind == "w" and not nxt[:1].isupper():
                self.say(("dot",), pos, pos + 1)
            else:
                self.pause(".", pos)
            return
        sentence = data.SENTENCE_MARKS.get(c)
        if sentence:
            self.pause(sentence, pos)
            return
        if c in "-‐‑":
            if alone:
                self.pause(",", pos)
            elif next_kind == "d" and (prev_kind == "d" or prev_word in data.AMPM):
                self.say(("to",), pos, pos + 1)  # "10am-5pm", "9-5pm"
            return  # a hyphen inside a word is silent
        if c in "–—":
            if prev_kind == "d" and next_kind == "d":
                self.say(("to",), pos, pos + 1)
            else:
                self.pause(",", pos)
            return
        if c in data.CLAUSE_MARKS:
            self.pause(",", pos)
            return
        if c == "/":
            if prev_kind == "w" and next_kind == "w":
                if not (prev_word.lower() == "and" and nxt.lower() == "or"):
                    self.say(("or",), pos, pos + 1)  # "yes/no" → yes or no; "and/or" → and or
            elif prev_kind and next_kind:
                self.say(("slash",), pos, pos + 1)
            return
        if c == "#":
            if next_kind == "d":
                self.say(("number",), pos, pos + 1)
            return
        words = data.SYMBOLS.get(c)
        if words:
            self.say(words, pos, pos + 1)
        # anything else (emoji, dingbats, controls, other scripts' marks) is dropped


class EnglishNormalizer:
    """English text normalization for car and appliance prompts."""

    def __init__(self, language: str = "en-US", *, day_first: bool = False, say_and: bool = False) -> None:
        self.language = language
        """The language tag this normalizer was made for."""
        self.day_first = day_first
        """Read "11/12/2026" day first (en-GB) instead of month first (en-US)."""
        self.say_and = say_and
        """Say "one hundred and twenty" (en-GB) instead of "one hundred twenty"."""

    def tokens(self, text: str, base: int = 0) -> list[Token]:
        """Normalize ``text``: spoken words with spans into it (plus ``base``) and pause marks."""
        if not isinstance(text, str):
            raise InvalidText("text must be a string")
        return _Run(self, text, base).run()

    def spoken(self, text: str) -> str:
        """The words of ``text`` as they will be spoken, joined by single spaces."""
        return " ".join(tok.text for tok in self.tokens(text) if isinstance(tok, Word))
