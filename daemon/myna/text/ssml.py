"""A safe, strict reader for Myna's SSML subset: segments of text that remember their offsets.

Supported (everything else is refused with :class:`~myna.errors.InvalidText` naming the character
position, because a silently ignored tag would be read aloud wrong):

``<speak>``
    The required root; attributes ``version``, ``xmlns``, ``xmlns:*``, ``xml:lang``.
``<break time="500ms|1.5s" strength="none|x-weak|weak|medium|strong|x-strong"/>``
    A pause; ``time`` (at most 10 s) wins over ``strength``; ``strength="none"`` removes it.
``<say-as interpret-as="characters|spell-out|cardinal|ordinal|date|telephone" format="…">``
    Text only inside; the frontend applies the interpretation.
``<prosody rate="x-slow|slow|medium|fast|x-fast|80%|+20%|-10%|1.2">``
    Speaking-rate factor (greater is faster); nested elements multiply, the product is kept in
    [0.25, 4].  ``pitch`` and ``volume`` are validated and ignored.
``<sub alias="…">``, ``<phoneme alphabet="arpabet|x-arpabet" ph="T AH0 M EY1 T OW2">``
    Text only inside; the spoken words point at the element's content.  Every ``ph`` symbol must be
    one of :data:`~myna.text.phonemes.PHONEMES`; ``ipa`` is refused ("only ARPAbet is supported").
``<p>``, ``<s>``
    Sentence breaks before (after text) and after.
``<emphasis level="…">``, ``<mark name="…"/>``
    Accepted and without effect.

Safety: no DTD (``<!DOCTYPE``), no entity declarations, no CDATA, no processing instructions other
than a leading ``<?xml …?>``; only the five predefined and numeric character references; characters
XML forbids (C0 controls other than tab/CR/LF, lone surrogates, U+FFFE/U+FFFF) are refused; the
document may be at most the caller's text limit and nest at most :data:`MAX_DEPTH` elements.  The
parser is a single linear scan, so hostile input costs time proportional to its length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import InvalidText, TextTooLong
from .phonemes import PHONEMES
from .units import Break, WordSpan

MAX_DEPTH = 32
"""Deepest element nesting accepted, ``<speak>`` included."""
MAX_BREAK_MS = 10_000
"""Longest ``<break time>`` accepted."""
RATE_RANGE = (0.25, 4.0)
"""Bounds of one ``rate`` value and of the nested product."""

RATE_WORDS = {"x-slow": 0.6, "slow": 0.8, "medium": 1.0, "default": 1.0, "fast": 1.25, "x-fast": 1.5}
BREAK_STRENGTH_MS = {"none": 0, "x-weak": 100, "weak": 200, "medium": 400, "strong": 700, "x-strong": 1000}
SAY_AS = frozenset(("characters", "spell-out", "cardinal", "ordinal", "date", "telephone"))
DATE_FORMATS = frozenset(("mdy", "dmy", "ymd", "md", "dm", "ym", "my", "d", "m", "y"))

_NAME = r"[A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?"
_START_TAG = re.compile(rf"<({_NAME})((?:\s+{_NAME}\s*=\s*(?:\"[^\"<]*\"|'[^'<]*'))*)\s*(/?)>")
_ATTR = re.compile(rf"\s+({_NAME})\s*=\s*(?:\"([^\"<]*)\"|'([^'<]*)')")
_END_TAG = re.compile(rf"</({_NAME})\s*>")
_ENTITY = re.compile(r"&(?:#([0-9]{1,7})|#x([0-9A-Fa-f]{1,6})|([A-Za-z_][\w.-]*));")
_XML_DECL = re.compile(r"<\?xml(?:\s+[A-Za-z]+\s*=\s*(?:\"[\w.-]*\"|'[\w.-]*'))*\s*\?>")
_ILLEGAL_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SPECIAL = re.compile(r"[<&]")
_PREDEFINED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_BREAK_TIME = re.compile(r"\s*(\d{1,6}(?:\.\d{1,3})?)\s*(ms|s)\s*")
_RATE_NUMBER = re.compile(r"\s*(\d{1,3}(?:\.\d{1,4})?)\s*")
_RATE_PERCENT = re.compile(r"\s*([+-]?)(\d{1,4}(?:\.\d{1,2})?)%\s*")
_TOKEN_VALUE = re.compile(r"[\w.:+%-]{1,32}")
_LANG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8}){0,4}")
_MAX_ALIAS = 512

# element → allowed attributes; a trailing "*" allows any attribute with that prefix.
_ATTRS: dict[str, frozenset[str]] = {
    "speak": frozenset(("version", "xmlns", "xmlns:*", "xml:lang")),
    "break": frozenset(("time", "strength")),
    "say-as": frozenset(("interpret-as", "format")),
    "prosody": frozenset(("rate", "pitch", "volume")),
    "sub": frozenset(("alias",)),
    "phoneme": frozenset(("alphabet", "ph")),
    "p": frozenset(("xml:lang",)),
    "s": frozenset(("xml:lang",)),
    "emphasis": frozenset(("level",)),
    "mark": frozenset(("name",)),
}
# Elements whose content is text only and becomes one segment.
_LEAF = frozenset(("say-as", "sub", "phoneme"))
_EMPTY = frozenset(("break", "mark"))


@dataclass(frozen=True)
class SsmlSegment:
    """A run of text with the SSML settings in force, or a pause; offsets point into the SSML."""

    text: str
    """The written text with character references decoded ("" for a pause)."""
    base: int
    """Offset in code points of ``text[0]`` (or of the ``<break>`` tag) in the original document."""
    rate: float = 1.0
    """Speaking-rate factor from enclosing ``<prosody>`` elements (product)."""
    say_as: str | None = None
    """``interpret-as`` of an enclosing ``<say-as>``."""
    format: str | None = None
    """``format`` of that ``<say-as>``."""
    alias: str | None = None
    """``<sub alias>``: speak this instead of ``text``, every word spanning ``text``."""
    phonemes: tuple[str, ...] | None = None
    """``<phoneme ph>``: one word with this pronunciation, spanning ``text``."""
    break_ms: int | None = None
    """For a ``<break>``: its length in milliseconds."""
    mark: str | None = None
    """For a pause: ``","`` (``<break>`` up to medium) or ``"."`` (strong breaks, ``<s>``, ``<p>``)."""
    origins: tuple[tuple[int, int], ...] | None = field(default=None, repr=False)
    """Per character of ``text``, its (start, end) in the original, when not simply ``base + i``
    (a character reference or a comment inside the run); use :meth:`span` rather than this."""

    @property
    def is_break(self) -> bool:
        """True for a pause segment."""
        return self.mark is not None

    def span(self, start: int = 0, length: int | None = None) -> WordSpan:
        """The original-document span of ``text[start:start + length]`` (default: all of ``text``)."""
        if length is None:
            length = len(self.text) - start
        if self.origins is None or not self.text:
            return WordSpan(self.base + start, length)
        start = min(max(start, 0), len(self.text) - 1)
        last = min(max(start + length - 1, start), len(self.text) - 1)
        first_at = self.origins[start][0]
        if length <= 0:
            return WordSpan(first_at, 0)
        return WordSpan(first_at, self.origins[last][1] - first_at)

    def break_token(self) -> Break | None:
        """The pause this segment stands for, or None for a text segment."""
        if self.mark is None:
            return None
        return Break(self.mark, WordSpan(self.base, 0), self.break_ms)


def parse_ssml(text: str, max_chars: int | None = None) -> list[SsmlSegment]:
    """Parse an SSML document into segments; raise InvalidText (with the position) or TextTooLong."""
    if max_chars is not None and len(text) > max_chars:
        raise TextTooLong(f"SSML has {len(text)} characters; this board accepts at most {max_chars}")
    return _Parser(text).run()


def strip_ssml(text: str) -> list[tuple[str, int]]:
    """Compatibility: (text, offset) pieces of an SSML document; pauses appear as ``","`` or ``"."``.

    ``<sub>`` yields its written content and ``<phoneme>`` its text; use :func:`parse_ssml` to honour them.
    """
    out: list[tuple[str, int]] = []
    for seg in parse_ssml(text):
        if seg.is_break:
            out.append((seg.mark or ",", seg.base))
        elif seg.origins is None:
            out.append((seg.text, seg.base))
        else:
            # Split where a character reference or comment breaks the offset arithmetic.
            start = 0
            for i in range(1, len(seg.text) + 1):
                o = seg.origins
                if i == len(seg.text) or o[i][0] != o[i - 1][1] or o[i][1] - o[i][0] != 1 or o[i - 1][1] - o[i - 1][0] != 1:
                    out.append((seg.text[start:i], seg.origins[start][0]))
                    start = i
    if not any(piece.strip() for piece, _ in out if piece not in (",", ".")):
        raise InvalidText("SSML: no text to speak")
    return out


@dataclass
class _Frame:
    name: str
    at: int
    rate: float
    attrs: dict[str, str]


class _Parser:
    """One pass over the document; builds segments and validates as it goes."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.out: list[SsmlSegment] = []
        self.stack: list[_Frame] = []
        self.buf: list[str] = []
        self.origins: list[tuple[int, int]] = []
        self.contiguous = True
        self.root_done = False

    def fail(self, message: str, at: int) -> InvalidText:
        return InvalidText(f"SSML: {message} at character {at}")

    def run(self) -> list[SsmlSegment]:
        text = self.text
        bad = _ILLEGAL_CHAR.search(text)
        if bad:
            raise self.fail(f"character U+{ord(bad.group()):04X} is not allowed in XML", bad.start())
        pos = 0
        if text.startswith("\ufeff"):
            pos = 1
        decl = _XML_DECL.match(text, pos)
        if decl:
            pos = decl.end()
        n = len(text)
        while pos < n:
            special = _SPECIAL.search(text, pos)
            end = special.start() if special else n
            if end > pos:
                self.add_text(pos, end)
            if special is None:
                break
            pos = self.markup(end)
        if self.stack:
            raise self.fail(f"<{self.stack[-1].name}> is not closed", self.stack[-1].at)
        if not self.root_done:
            raise self.fail("the root element must be <speak>", 0)
        return self.out

    # -- text ----------------------------------------------------------------------------------

    def add_text(self, start: int, end: int) -> None:
        if not self.stack:
            if self.text[start:end].strip():
                raise self.fail("text outside <speak>", start + len(self.text[start:end]) - len(self.text[start:end].lstrip()))
            return
        if self.stack[-1].name in _EMPTY:
            raise self.fail(f"<{self.stack[-1].name}> must be empty", start)
        if self.origins and self.origins[-1][1] != start:
            self.contiguous = False  # a comment sits inside the run
        self.buf.append(self.text[start:end])
        self.origins.append((start, end))

    def add_char(self, ch: str, start: int, end: int) -> None:
        if not self.stack:
            raise self.fail("character reference outside <speak>", start)
        if self.stack[-1].name in _EMPTY:
            raise self.fail(f"<{self.stack[-1].name}> must be empty", start)
        self.buf.append(ch)
        self.origins.append((start, end))
        self.contiguous = False

    def flush(self, **settings: object) -> None:
        """Emit the buffered text as a segment (if any) with the settings of the innermost elements."""
        if not self.buf:
            return
        content = "".join(self.buf)
        if not settings and not content.strip():
            # Layout whitespace between elements says nothing.
            self.buf, self.origins, self.contiguous = [], [], True
            return
        base = self.origins[0][0]
        origins: tuple[tuple[int, int], ...] | None = None
        if not self.contiguous:
            per_char: list[tuple[int, int]] = []
            for piece, (s, e) in zip(self.buf, self.origins):
                if len(piece) == e - s:
                    per_char.extend((s + k, s + k + 1) for k in range(len(piece)))
                else:  # one decoded character reference
                    per_char.append((s, e))
            origins = tuple(per_char)
        self.buf = []
        self.origins = []
        self.contiguous = True
        rate = self.stack[-1].rate if self.stack else 1.0
        self.out.append(SsmlSegment(content, base, rate, origins=origins, **settings))  # type: ignore[arg-type]

    def pause(self, at: int, mark: str, ms: int | None) -> None:
        self.flush()
        rate = self.stack[-1].rate if self.stack else 1.0
        self.out.append(SsmlSegment("", at, rate, break_ms=ms, mark=mark))

    def sentence_break(self, at: int) -> None:
        self.flush()
        if self.out and not self.out[-1].is_break and self.out[-1].text.strip():
            self.pause(at, ".", None)

    # -- markup --------------------------------------------------------------------------------

    def markup(self, at: int) -> int:
        text = self.text
        if text[at] == "&":
            m = _ENTITY.match(text, at)
            if not m:
                raise self.fail("a bare '&' (write &amp;)", at)
            self.add_char(self.entity(m, at), at, m.end())
            return m.end()
        if text.startswith("<!--", at):
            close = text.find("-->", at + 4)
            if close < 0:
                raise self.fail("unterminated comment", at)
            return close + 3
        if text.startswith("<!DOCTYPE", at) or text.startswith("<!ENTITY", at):
            raise self.fail("DTDs and entity declarations are not allowed", at)
        if text.startswith("<![CDATA[", at):
            raise self.fail("CDATA sections are not supported", at)
        if text.startswith("<!", at) or text.startswith("<?", at):
            raise self.fail("declarations and processing instructions are not allowed", at)
        if text.startswith("</", at):
            m = _END_TAG.match(text, at)
            if not m:
                raise self.fail("malformed end tag", at)
            self.end(m.group(1), at)
            return m.end()
        m = _START_TAG.match(text, at)
        if not m:
            raise self.fail("malformed tag or a bare '<' (write &lt;)", at)
        name = m.group(1)
        attrs = self.attributes(m.group(2), at + 1 + len(name), name)
        self.start(name, attrs, at)
        if m.group(3):
            self.end(name, at)
        return m.end()

    def entity(self, m: re.Match[str], at: int) -> str:
        dec, hexa, named = m.groups()
        if named is not None:
            if named not in _PREDEFINED:
                # Other entities need a DTD; refusing them rules out entity-expansion attacks.
                raise self.fail(f"unknown entity &{named};", at)
            return _PREDEFINED[named]
        code = int(dec) if dec is not None else int(hexa, 16)
        ch = chr(code) if code < 0x110000 else "\0"
        if _ILLEGAL_CHAR.match(ch):
            raise self.fail("invalid character reference", at)
        return ch

    def attributes(self, raw: str, at: int, element: str) -> dict[str, str]:
        attrs: dict[str, str] = {}
        for m in _ATTR.finditer(raw):
            name = m.group(1)
            where = at + m.start(1)
            if name in attrs:
                raise self.fail(f"duplicate attribute {name!r}", where)
            value_raw = m.group(2) if m.group(2) is not None else m.group(3)
            value_at = at + (m.start(2) if m.group(2) is not None else m.start(3))
            attrs[name] = self.attribute_value(value_raw, value_at)
            allowed = _ATTRS.get(element)
            if allowed is not None and name not in allowed and not (
                name.startswith("xmlns:") and "xmlns:*" in allowed
            ):
                raise self.fail(f"<{element}> has no attribute {name!r}", where)
        return attrs

    def attribute_value(self, raw: str, at: int) -> str:
        if "&" not in raw:
            return raw
        out = []
        pos = 0
        while True:
            amp = raw.find("&", pos)
            if amp < 0:
                out.append(raw[pos:])
                return "".join(out)
            out.append(raw[pos:amp])
            m = _ENTITY.match(raw, amp)
            if not m:
                raise self.fail("a bare '&' in an attribute value (write &amp;)", at + amp)
            out.append(self.entity(m, at + amp))
            pos = m.end()

    def start(self, name: str, attrs: dict[str, str], at: int) -> None:
        if not self.stack:
            if name != "speak":
                raise self.fail(f"the root element must be <speak>, found <{name}>", at)
            if self.root_done:
                raise self.fail("a second root element", at)
        elif name == "speak":
            raise self.fail("<speak> inside <speak>", at)
        if name not in _ATTRS:
            raise self.fail(f"unsupported element <{name}>", at)
        if self.stack and self.stack[-1].name in _LEAF | _EMPTY:
            raise self.fail(f"<{self.stack[-1].name}> may contain only text, found <{name}>", at)
        if len(self.stack) >= MAX_DEPTH:
            raise self.fail(f"elements nested deeper than {MAX_DEPTH}", at)
        rate = self.stack[-1].rate if self.stack else 1.0
        getattr(self, "_check_" + name.replace("-", "_"))(attrs, at)
        if name == "prosody" and "rate" in attrs:
            lo, hi = RATE_RANGE
            rate = min(max(rate * self.rate(attrs["rate"], at), lo), hi)
        self.flush()
        if name in ("p", "s"):
            self.sentence_break(at)
        self.stack.append(_Frame(name, at, rate, attrs))

    def end(self, name: str, at: int) -> None:
        if not self.stack or self.stack[-1].name != name:
            raise self.fail(f"unexpected </{name}>", at)
        frame = self.stack[-1]
        if name == "say-as":
            self.flush(say_as=frame.attrs["interpret-as"], format=frame.attrs.get("format"))
        elif name == "sub":
            self.leaf(frame, alias=frame.attrs["alias"])
        elif name == "phoneme":
            self.leaf(frame, phonemes=tuple(frame.attrs["ph"].upper().split()))
        else:
            self.flush()
        if name == "break":
            ms = self.break_ms(frame.attrs)
            if ms:
                strong = frame.attrs.get("strength") in ("strong", "x-strong") or ms >= BREAK_STRENGTH_MS["strong"]
                self.pause(frame.at, "." if strong else ",", ms)
        elif name in ("p", "s"):
            self.sentence_break(at)
        self.stack.pop()
        if not self.stack:
            self.root_done = True

    def leaf(self, frame: _Frame, **settings: object) -> None:
        if not self.buf:
            # Empty content: the spoken words point at the element itself.
            self.buf, self.origins = [""], [(frame.at, frame.at)]
        self.flush(**settings)

    # -- attribute checks ----------------------------------------------------------------------

    def _need(self, attrs: dict[str, str], name: str, element: str, at: int) -> str:
        if name not in attrs:
            raise self.fail(f"<{element}> needs a {name!r} attribute", at)
        return attrs[name]

    def _check_speak(self, attrs: dict[str, str], at: int) -> None:
        self._lang(attrs, at)

    def _check_p(self, attrs: dict[str, str], at: int) -> None:
        self._lang(attrs, at)

    _check_s = _check_p

    def _lang(self, attrs: dict[str, str], at: int) -> None:
        lang = attrs.get("xml:lang")
        if lang is not None and not _LANG.fullmatch(lang):
            raise self.fail(f"invalid xml:lang {lang!r}", at)

    def _check_break(self, attrs: dict[str, str], at: int) -> None:
        if "time" in attrs:
            m = _BREAK_TIME.fullmatch(attrs["time"])
            if not m:
                raise self.fail(f"invalid break time {attrs['time']!r} (use e.g. 500ms or 1.5s)", at)
            if self.break_ms(attrs) > MAX_BREAK_MS:
                raise self.fail(f"break longer than {MAX_BREAK_MS} ms", at)
        if "strength" in attrs and attrs["strength"] not in BREAK_STRENGTH_MS:
            raise self.fail(f"invalid break strength {attrs['strength']!r}", at)

    def break_ms(self, attrs: dict[str, str]) -> int:
        if "time" in attrs:
            m = _BREAK_TIME.fullmatch(attrs["time"])
            assert m is not None  # checked when the element opened
            value = float(m.group(1))
            return round(value if m.group(2) == "ms" else value * 1000)
        return BREAK_STRENGTH_MS[attrs.get("strength", "medium")]

    def _check_say_as(self, attrs: dict[str, str], at: int) -> None:
        kind = self._need(attrs, "interpret-as", "say-as", at)
        if kind not in SAY_AS:
            raise self.fail(f"unsupported interpret-as {kind!r} (one of {', '.join(sorted(SAY_AS))})", at)
        fmt = attrs.get("format")
        if fmt is not None:
            if kind == "date" and fmt not in DATE_FORMATS:
                raise self.fail(f"invalid date format {fmt!r}", at)
            if not _TOKEN_VALUE.fullmatch(fmt):
                raise self.fail(f"invalid format {fmt!r}", at)

    def _check_prosody(self, attrs: dict[str, str], at: int) -> None:
        for name in ("pitch", "volume"):
            if name in attrs and not _TOKEN_VALUE.fullmatch(attrs[name]):
                raise self.fail(f"invalid prosody {name} {attrs[name]!r}", at)
        if "rate" in attrs:
            self.rate(attrs["rate"], at)

    def rate(self, value: str, at: int) -> float:
        word = value.strip()
        if word in RATE_WORDS:
            return RATE_WORDS[word]
        number = _RATE_NUMBER.fullmatch(value)
        percent = _RATE_PERCENT.fullmatch(value)
        if number:
            factor = float(number.group(1))
        elif percent:
            amount = float(percent.group(2)) / 100
            factor = {"+": 1 + amount, "-": 1 - amount, "": amount}[percent.group(1)]
        else:
            raise self.fail(f"invalid prosody rate {value!r}", at)
        lo, hi = RATE_RANGE
        if not lo <= factor <= hi:
            raise self.fail(f"prosody rate {value!r} is outside {lo}–{hi}", at)
        return factor

    def _check_sub(self, attrs: dict[str, str], at: int) -> None:
        alias = self._need(attrs, "alias", "sub", at)
        if not alias.strip() or len(alias) > _MAX_ALIAS:
            raise self.fail(f"<sub> alias must be 1 to {_MAX_ALIAS} characters", at)

    def _check_phoneme(self, attrs: dict[str, str], at: int) -> None:
        alphabet = attrs.get("alphabet", "arpabet")
        if alphabet not in ("arpabet", "x-arpabet"):
            raise self.fail(f"phoneme alphabet {alphabet!r}: only ARPAbet is supported", at)
        symbols = self._need(attrs, "ph", "phoneme", at).upper().split()
        if not symbols:
            raise self.fail("<phoneme> ph is empty", at)
        valid = set(PHONEMES)
        for sym in symbols:
            if sym not in valid:
                hint = " (vowels need a stress digit 0, 1 or 2)" if sym + "1" in valid else ""
                raise self.fail(f"unknown ARPAbet symbol {sym!r}{hint}", at)

    def _check_emphasis(self, attrs: dict[str, str], at: int) -> None:
        level = attrs.get("level", "moderate")
        if level not in ("strong", "moderate", "none", "reduced"):
            raise self.fail(f"invalid emphasis level {level!r}", at)

    def _check_mark(self, attrs: dict[str, str], at: int) -> None:
        name = attrs.get("name", "")
        if not _TOKEN_VALUE.fullmatch(name):
            raise self.fail(f"invalid mark name {name!r}", at)
