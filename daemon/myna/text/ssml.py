"""A safe reader for the SSML subset: tags are dropped, text keeps its offsets; no DTDs, no entities."""

from __future__ import annotations

import re

from ..errors import InvalidText

_MARKUP = re.compile(r"<(/?)([A-Za-z][\w:-]*)([^<>]*?)(/?)>|<!--.*?-->|&(#x[0-9A-Fa-f]+|#[0-9]+|\w+);|<|&", re.S)
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
MAX_DEPTH = 32


def strip_ssml(text: str) -> list[tuple[str, int]]:
    """Return (text, offset) segments of an SSML document; raise InvalidText with the position."""
    segments: list[tuple[str, int]] = []
    stack: list[str] = []
    pos = 0
    for match in _MARKUP.finditer(text):
        if match.start() > pos:
            _text_segment(text, pos, match.start(), stack, segments)
        token = match.group(0)
        where = match.start()
        if token.startswith("<!--"):
            pass
        elif match.group(2):
            closing, name, self_closing = match.group(1), match.group(2), match.group(4)
            if closing:
                if not stack or stack[-1] != name:
                    raise InvalidText(f"SSML: unexpected </{name}> at character {where}")
                stack.pop()
            elif not self_closing:
                if not stack and name != "speak":
                    raise InvalidText(f"SSML: the root element must be <speak>, found <{name}> at character {where}")
                stack.append(name)
                if len(stack) > MAX_DEPTH:
                    raise InvalidText(f"SSML: elements nested deeper than {MAX_DEPTH} at character {where}")
            if name == "break" and stack:
                # A break is a pause: let the tokenizer see a clause mark at this position.
                segments.append((",", where))
        elif match.group(5):
            entity = match.group(5)
            if entity.startswith("#"):
                code = int(entity[2:], 16) if entity[1] in "xX" else int(entity[1:])
                if not 0 < code < 0x110000 or 0xD800 <= code <= 0xDFFF:
                    raise InvalidText(f"SSML: invalid character reference at character {where}")
                segments.append((chr(code), where))
            elif entity in _NAMED:
                segments.append((_NAMED[entity], where))
            else:
                # Custom entities need a DTD; refusing them rules out entity-expansion attacks.
                raise InvalidText(f"SSML: unknown entity &{entity}; at character {where}")
        else:
            raise InvalidText(f"SSML: stray {token!r} at character {where}")
        pos = match.end()
    if pos < len(text):
        _text_segment(text, pos, len(text), stack, segments)
    if stack:
        raise InvalidText(f"SSML: <{stack[-1]}> is not closed")
    if not any(seg.strip() for seg, _ in segments if seg != ","):
        raise InvalidText("SSML: no text to speak")
    return segments


def _text_segment(text: str, start: int, end: int, stack: list[str], out: list[tuple[str, int]]) -> None:
    chunk = text[start:end]
    if not stack:
        if chunk.strip():
            raise InvalidText(f"SSML: text outside <speak> at character {start}")
        return
    out.append((chunk, start))
