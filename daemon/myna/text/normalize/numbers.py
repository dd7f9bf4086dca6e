"""English number words: cardinals, ordinals, decimals, digit strings, years, fractions, road numbers."""

from __future__ import annotations

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ("", "thousand", "million", "billion", "trillion", "quadrillion")
_IRREGULAR_ORDINALS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_IRREGULAR_PLURALS = {"six": "sixes"}

DIGIT_WORDS = dict(zip("0123456789", _ONES))
"""Each ASCII digit to its name; ``0`` is ``zero``."""

MAX_CARDINAL = 10**18 - 1
"""Larger integers are read digit by digit."""

Words = tuple[str, ...]


def _below_hundred(n: int) -> Words:
    if n < 20:
        return (_ONES[n],)
    tens, ones = divmod(n, 10)
    return (_TENS[tens],) if ones == 0 else (_TENS[tens], _ONES[ones])


def _build_below_thousand(n: int, say_and: bool) -> Words:
    hundreds, rest = divmod(n, 100)
    if not hundreds:
        return _below_hundred(rest)
    head: Words = (_ONES[hundreds], "hundred")
    if not rest:
        return head
    return head + (("and",) if say_and else ()) + _below_hundred(rest)


# Built once at import: every group of three digits is a tuple lookup afterwards.
_BELOW_THOUSAND = tuple(_build_below_thousand(n, False) for n in range(1000))
_BELOW_THOUSAND_AND = tuple(_build_below_thousand(n, True) for n in range(1000))


def cardinal(n: int, say_and: bool = False) -> Words:
    """Read a non-negative integer: 1234 → one thousand two hundred thirty four."""
    if n < 1000:
        return (_BELOW_THOUSAND_AND if say_and else _BELOW_THOUSAND)[n]
    if n > MAX_CARDINAL:
        return digits(str(n))
    table = _BELOW_THOUSAND_AND if say_and else _BELOW_THOUSAND
    groups: list[int] = []
    while n:
        n, group = divmod(n, 1000)
        groups.append(group)
    out: list[str] = []
    for scale in range(len(groups) - 1, -1, -1):
        group = groups[scale]
        if not group:
            continue
        if scale == 0 and say_and and group < 100:
            # British "one thousand and five".
            out.append("and")
        out.extend(table[group] if scale == 0 else _BELOW_THOUSAND[group])
        if scale:
            out.append(_SCALES[scale])
    return tuple(out)


def ordinal_word(word: str) -> str:
    """Turn the last word of a cardinal into its ordinal: twenty → twentieth."""
    irregular = _IRREGULAR_ORDINALS.get(word)
    if irregular:
        return irregular
    if word.endswith("y"):
        return word[:-1] + "ieth"
    return word + "th"


def ordinal(n: int, say_and: bool = False) -> Words:
    """Read an ordinal: 23 → twenty third, 101 → one hundred first."""
    words = cardinal(n, say_and)
    return words[:-1] + (ordinal_word(words[-1]),)


def plural_word(word: str) -> str:
    """Pluralize a number word for decades: ninety → nineties, hundred → hundreds."""
    irregular = _IRREGULAR_PLURALS.get(word)
    if irregular:
        return irregular
    if word.endswith("y"):
        return word[:-1] + "ies"
    return word + "s"


def digits(text: str, zero: str = "zero") -> Words:
    """Read every ASCII digit of ``text`` on its own; anything else is skipped."""
    return tuple(zero if c == "0" else DIGIT_WORDS[c] for c in text if c in DIGIT_WORDS)


def integer(text: str, say_and: bool = False) -> Words:
    """Read a digit string (commas allowed): leading zeros and huge values digit by digit."""
    plain = text.replace(",", "")
    if len(plain) > 1 and plain[0] == "0" and "," not in text:
        return digits(plain)
    if len(plain) > 18:
        return digits(plain)
    return cardinal(int(plain), say_and)


def decimal(int_part: str, frac_part: str, say_and: bool = False) -> Words:
    """Read ``int_part.frac_part``: 3.14 → three point one four; .5 → point five."""
    head = integer(int_part, say_and) if int_part else ()
    return head + ("point",) + digits(frac_part)


def year(n: int) -> Words:
    """Read a year: 1999 nineteen ninety nine, 2000 two thousand, 2007 two thousand seven, 1905 nineteen oh five."""
    if n < 1000 or n > 9999:
        return cardinal(n)
    high, low = divmod(n, 100)
    if n % 1000 < 10:
        # 2000, 2007, 1000, 3005: the thousands reading.
        return cardinal(n)
    if low == 0:
        return _below_hundred(high) + ("hundred",)
    if low < 10:
        return _below_hundred(high) + ("oh", _ONES[low])
    return _below_hundred(high) + _below_hundred(low)


def decade(n: int) -> Words:
    """Read a decade given its first year: 1990 → nineteen nineties, 2000 → two thousands."""
    words = year(n) if n >= 1000 else cardinal(n)
    return words[:-1] + (plural_word(words[-1]),)


def road(n: int) -> Words:
    """Read a road number the way drivers say it: 95 ninety five, 101 one oh one, 280 two eighty."""
    if n < 100 or n > 999:
        return cardinal(n)
    high, low = divmod(n, 100)
    if low == 0:
        return (_ONES[high], "hundred")
    if low < 10:
        return (_ONES[high], "oh", _ONES[low])
    return (_ONES[high],) + _below_hundred(low)


def fraction(numerator: int, denominator: int) -> Words:
    """Read a fraction: 1/2 one half, 3/4 three quarters, 5/8 five eighths."""
    head = cardinal(numerator)
    if denominator == 2:
        tail = "half" if numerator == 1 else "halves"
    elif denominator == 4:
        tail = "quarter" if numerator == 1 else "quarters"
    else:
        tail = ordinal(denominator)[-1]
        if numerator != 1:
            tail += "s"
        return head + ordinal(denominator)[:-1] + (tail,)
    return head + (tail,)
