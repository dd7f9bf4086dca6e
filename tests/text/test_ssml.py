"""The SSML subset: every element, nesting, spans into the original, and every refusal with its position."""

from __future__ import annotations

import time

import pytest
from myna.errors import InvalidText, TextTooLong
from myna.text.ssml import MAX_DEPTH, SsmlSegment, parse_ssml, strip_ssml
from myna.text.units import Break, WordSpan


def texts(doc: str) -> list[str]:
    return [s.text for s in parse_ssml(doc) if not s.is_break]


def original(doc: str, span: WordSpan) -> str:
    return doc[span.char_offset : span.char_offset + span.char_length]


def test_plain_speak_gives_one_segment_pointing_into_the_document() -> None:
    doc = '<?xml version="1.0"?><speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="en-US">Turn left.</speak>'
    [seg] = parse_ssml(doc)
    assert seg.text == "Turn left." and original(doc, seg.span()) == "Turn left." and seg.rate == 1.0


def test_layout_whitespace_between_elements_is_dropped() -> None:
    doc = "<speak>\n  <p>One.</p>\n  <p>Two.</p>\n</speak>"
    assert texts(doc) == ["One.", "Two."]


@pytest.mark.parametrize(
    ("tag", "ms", "mark"),
    [
        ('<break time="500ms"/>', 500, ","),
        ('<break time="1s"/>', 1000, "."),
        ('<break time="1.5s" />', 1500, "."),
        ('<break time=" 250 ms "/>', 250, ","),
        ("<break/>", 400, ","),
        ('<break strength="weak"/>', 200, ","),
        ('<break strength="x-strong"/>', 1000, "."),
        ('<break strength="strong" time="100ms"/>', 100, "."),
        ("<break></break>", 400, ","),
    ],
)
def test_break(tag: str, ms: int, mark: str) -> None:
    doc = f"<speak>Wait{tag}go</speak>"
    segs = parse_ssml(doc)
    assert [s.text for s in segs] == ["Wait", "", "go"]
    brk = segs[1]
    assert (brk.break_ms, brk.mark, brk.is_break, brk.base) == (ms, mark, True, 11)
    assert brk.break_token() == Break(mark, WordSpan(11, 0), ms)
    assert segs[0].break_token() is None


def test_break_strength_none_removes_the_pause() -> None:
    assert [s.text for s in parse_ssml('<speak>a<break strength="none"/>b</speak>')] == ["a", "b"]


@pytest.mark.parametrize("kind", ["characters", "spell-out", "cardinal", "ordinal", "date", "telephone"])
def test_say_as(kind: str) -> None:
    doc = f'<speak>Call <say-as interpret-as="{kind}">123</say-as> now</speak>'
    segs = parse_ssml(doc)
    assert [(s.text, s.say_as) for s in segs] == [("Call ", None), ("123", kind), (" now", None)]
    assert original(doc, segs[1].span()) == "123"


def test_say_as_date_format() -> None:
    [_, seg] = parse_ssml('<speak>On <say-as interpret-as="date" format="dmy">01/02/2024</say-as></speak>')
    assert (seg.say_as, seg.format) == ("date", "dmy")


@pytest.mark.parametrize(
    ("rate", "factor"),
    [("x-slow", 0.6), ("slow", 0.8), ("medium", 1.0), ("fast", 1.25), ("x-fast", 1.5), ("80%", 0.8), ("1.2", 1.2),
     ("+20%", 1.2), ("-10%", 0.9), ("150%", 1.5)],
)
def test_prosody_rate(rate: str, factor: float) -> None:
    [seg] = parse_ssml(f'<speak><prosody rate="{rate}">hello</prosody></speak>')
    assert seg.rate == pytest.approx(factor)


def test_nested_prosody_multiplies_and_unwinds() -> None:
    doc = '<speak>a<prosody rate="slow">b<prosody rate="50%">c</prosody>d</prosody>e</speak>'
    assert [(s.text, round(s.rate, 3)) for s in parse_ssml(doc)] == [("a", 1.0), ("b", 0.8), ("c", 0.4), ("d", 0.8), ("e", 1.0)]


def test_nested_prosody_product_is_clamped() -> None:
    doc = '<speak><prosody rate="4"><prosody rate="4">fast</prosody></prosody></speak>'
    assert parse_ssml(doc)[0].rate == 4.0


def test_prosody_pitch_and_volume_are_accepted_and_ignored() -> None:
    [seg] = parse_ssml('<speak><prosody pitch="+10%" volume="loud">x</prosody></speak>')
    assert seg.rate == 1.0 and seg.text == "x"


def test_sub_speaks_the_alias_over_the_content_span() -> None:
    doc = '<speak>Open <sub alias="World Wide Web Consortium">W3C</sub>.</speak>'
    segs = parse_ssml(doc)
    assert segs[1].alias == "World Wide Web Consortium" and segs[1].text == "W3C"
    assert original(doc, segs[1].span()) == "W3C"


def test_phoneme_arpabet() -> None:
    doc = '<speak>a <phoneme alphabet="arpabet" ph="T AH0 M EY1 T OW2">tomato</phoneme></speak>'
    seg = parse_ssml(doc)[1]
    assert seg.phonemes == ("T", "AH0", "M", "EY1", "T", "OW2") and original(doc, seg.span()) == "tomato"
    [seg] = parse_ssml('<speak><phoneme alphabet="x-arpabet" ph="t ah0">x</phoneme></speak>')
    assert seg.phonemes == ("T", "AH0")


def test_empty_sub_and_phoneme_point_at_the_element() -> None:
    doc = '<speak>x <sub alias="hello"/></speak>'
    seg = parse_ssml(doc)[1]
    assert seg.alias == "hello" and seg.span() == WordSpan(9, 0)


def test_paragraphs_and_sentences_break_sentences() -> None:
    doc = "<speak>Intro<p><s>One</s><s>Two</s></p>Outro</speak>"
    segs = parse_ssml(doc)
    assert [(s.text, s.mark) for s in segs] == [
        ("Intro", None), ("", "."), ("One", None), ("", "."), ("Two", None), ("", "."), ("Outro", None)
    ]


def test_emphasis_and_mark_are_accepted_without_effect() -> None:
    assert texts('<speak><emphasis level="strong">now</emphasis><mark name="m1"/> go</speak>') == ["now", " go"]


def test_entities_decode_and_spans_still_point_at_the_original() -> None:
    doc = "<speak>AT&amp;T &#x26; Tom &lt;3 caf&#233; <!-- note --> ok</speak>"
    [seg] = parse_ssml(doc)
    assert seg.text == "AT&T & Tom <3 caf\u00e9  ok"
    start = seg.text.index("caf")
    assert original(doc, seg.span(start, 4)) == "caf&#233;"
    assert original(doc, seg.span(seg.text.index("Tom"), 3)) == "Tom"
    assert original(doc, seg.span(seg.text.index("ok"), 2)) == "ok"
    assert original(doc, seg.span(0, 4)) == "AT&amp;T"


def test_attribute_values_decode_entities() -> None:
    [seg] = parse_ssml("<speak><sub alias='Tom &amp; Jerry'>T&amp;J</sub></speak>")
    assert seg.alias == "Tom & Jerry" and seg.text == "T&J"


def test_strip_ssml_compatibility() -> None:
    doc = '<speak>Hello <break time="300ms"/>AT&amp;T<p>x</p></speak>'
    assert strip_ssml(doc) == [("Hello ", 7), (",", 13), ("AT", 34), ("&", 36), ("T", 41), (".", 42), ("x", 45), (".", 46)]
    with pytest.raises(InvalidText):
        strip_ssml("<speak><break/></speak>")


def test_segments_default_for_plain_text() -> None:
    seg = SsmlSegment(text="hi", base=0)
    assert seg.span() == WordSpan(0, 2) and not seg.is_break and seg.rate == 1.0


ERRORS = [
    ("<speak>unclosed", "<speak> is not closed", 0),
    ("hello", "text outside <speak>", 0),
    ("<p>x</p>", "root element must be <speak>, found <p>", 0),
    ("  x<speak>a</speak>", "text outside <speak>", 2),
    ("<speak>a</speak>tail", "text outside <speak>", 16),
    ("<speak>a</speak><speak>b</speak>", "a second root element", 16),
    ("<speak>a</p></speak>", "unexpected </p>", 8),
    ("<speak><audio src='x.wav'/></speak>", "unsupported element <audio>", 7),
    ("<speak><voice name='x'>a</voice></speak>", "unsupported element <voice>", 7),
    ("<speak><p id='1'>x</p></speak>", "<p> has no attribute 'id'", 10),
    ("<speak><break time='1s' time='2s'/></speak>", "duplicate attribute 'time'", 24),
    ("<speak><break time='fast'/></speak>", "invalid break time", 7),
    ("<speak><break time='11s'/></speak>", "break longer than 10000 ms", 7),
    ("<speak><break strength='huge'/></speak>", "invalid break strength", 7),
    ("<speak><break>x</break></speak>", "<break> must be empty", 14),
    ("<speak><say-as>1</say-as></speak>", "needs a 'interpret-as' attribute", 7),
    ("<speak><say-as interpret-as='currency'>1</say-as></speak>", "unsupported interpret-as", 7),
    ("<speak><say-as interpret-as='date' format='qq'>1</say-as></speak>", "invalid date format", 7),
    ("<speak><say-as interpret-as='cardinal' format='a b'>1</say-as></speak>", "invalid format", 7),
    ("<speak><prosody rate='warp'>a</prosody></speak>", "invalid prosody rate", 7),
    ("<speak><prosody rate='9'>a</prosody></speak>", "outside", 7),
    ("<speak><prosody rate='5%'>a</prosody></speak>", "outside", 7),
    ("<speak><prosody pitch='a b'>a</prosody></speak>", "invalid prosody pitch", 7),
    ("<speak><sub>W3C</sub></speak>", "needs a 'alias' attribute", 7),
    ("<speak><sub alias=' '>W3C</sub></speak>", "alias must be", 7),
    ("<speak><sub alias='x'><break/></sub></speak>", "<sub> may contain only text", 22),
    ("<speak><phoneme alphabet='ipa' ph='t\u0259'>a</phoneme></speak>", "only ARPAbet is supported", 7),
    ("<speak><phoneme ph='T AH M'>a</phoneme></speak>", "unknown ARPAbet symbol 'AH' (vowels need a stress digit", 7),
    ("<speak><phoneme ph='T XX0'>a</phoneme></speak>", "unknown ARPAbet symbol 'XX0'", 7),
    ("<speak><phoneme ph=''>a</phoneme></speak>", "ph is empty", 7),
    ("<speak><phoneme>a</phoneme></speak>", "needs a 'ph' attribute", 7),
    ("<speak><emphasis level='max'>a</emphasis></speak>", "invalid emphasis level", 7),
    ("<speak><speak>a</speak></speak>", "<speak> inside <speak>", 7),
    ("<speak xml:lang='en US'>a</speak>", "invalid xml:lang", 0),
    ("<speak>a & b</speak>", "a bare '&'", 9),
    ("<speak>a &foo; b</speak>", "unknown entity &foo;", 9),
    ("<speak>a &#0; b</speak>", "invalid character reference", 9),
    ("<speak>a &#xD800; b</speak>", "invalid character reference", 9),
    ("<speak>a &#x110000; b</speak>", "invalid character reference", 9),
    ("<speak><sub alias='a &b'>x</sub></speak>", "a bare '&' in an attribute value", 21),
    ("<speak>a < b</speak>", "malformed tag or a bare '<'", 9),
    ("<speak>a <b</speak>", "malformed tag", 9),
    ("<speak>a </ b></speak>", "malformed end tag", 9),
    ("<speak><break time=500ms/></speak>", "malformed tag", 7),
    ("<speak>a <!-- open </speak>", "unterminated comment", 9),
    ("<speak><![CDATA[x]]></speak>", "CDATA sections are not supported", 7),
    ("<speak><?php echo 1 ?></speak>", "processing instructions are not allowed", 7),
    ("<speak>a\x00b</speak>", "U+0000 is not allowed", 8),
    ("<speak>a\x1bb</speak>", "U+001B is not allowed", 8),
    ("<speak>a\ud800b</speak>", "U+D800 is not allowed", 8),
    ("<speak>a\uffffb</speak>", "U+FFFF is not allowed", 8),
    ("", "root element must be <speak>", 0),
]


@pytest.mark.parametrize(("doc", "message", "position"), ERRORS)
def test_invalid_ssml_names_the_problem_and_its_position(doc: str, message: str, position: int) -> None:
    with pytest.raises(InvalidText) as info:
        parse_ssml(doc)
    assert message in info.value.message
    assert info.value.message.endswith(f"at character {position}"), info.value.message
    assert info.value.code == "InvalidText"


def test_size_limit_is_the_callers_text_limit() -> None:
    doc = "<speak>" + "a" * 100 + "</speak>"
    assert parse_ssml(doc, max_chars=len(doc))
    with pytest.raises(TextTooLong):
        parse_ssml(doc, max_chars=len(doc) - 1)


def test_billion_laughs_is_refused_fast() -> None:
    lol = (
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
        + "".join(f' <!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">\n' for i in range(1, 10))
        + "]>\n<speak>&lol9;</speak>"
    )
    start = time.perf_counter()
    with pytest.raises(InvalidText, match="DTDs and entity declarations are not allowed at character 22"):
        parse_ssml(lol)
    assert time.perf_counter() - start < 0.05


@pytest.mark.parametrize(
    "doc",
    [
        '<!DOCTYPE speak SYSTEM "file:///etc/passwd"><speak>&xxe;</speak>',
        '<!DOCTYPE speak [<!ENTITY xxe SYSTEM "http://example.com/x">]><speak>&xxe;</speak>',
        '<speak><!ENTITY x "y">&x;</speak>',
        "<speak>&xxe;</speak>",
    ],
)
def test_external_and_custom_entities_are_refused(doc: str) -> None:
    start = time.perf_counter()
    with pytest.raises(InvalidText, match="not allowed|unknown entity"):
        parse_ssml(doc)
    assert time.perf_counter() - start < 0.05


def test_deep_nesting_is_refused() -> None:
    ok = "<speak>" + "<prosody rate='1'>" * (MAX_DEPTH - 1) + "x" + "</prosody>" * (MAX_DEPTH - 1) + "</speak>"
    assert texts(ok) == ["x"]
    deep = "<speak>" + "<prosody rate='1'>" * 10_000 + "x" + "</prosody>" * 10_000 + "</speak>"
    start = time.perf_counter()
    with pytest.raises(InvalidText, match=f"nested deeper than {MAX_DEPTH} at character {7 + 18 * (MAX_DEPTH - 1)}"):
        parse_ssml(deep)
    assert time.perf_counter() - start < 0.05


def test_large_hostile_documents_stay_linear() -> None:
    for doc in (
        "<speak>" + "&amp;" * 100_000 + "</speak>",
        "<speak>" + "<!-- -->" * 50_000 + "x</speak>",
        "<speak>" + "<break/>" * 50_000 + "</speak>",
        "<speak>" + "a" * 500_000 + "</speak>",
        "<speak" + " " * 200_000 + ">x</speak>",
    ):
        start = time.perf_counter()
        parse_ssml(doc)
        assert time.perf_counter() - start < 1.0
    start = time.perf_counter()
    with pytest.raises(InvalidText):
        parse_ssml("<speak><sub alias='" + "a" * 300_000)
    with pytest.raises(InvalidText):
        parse_ssml("<speak>&" + "a" * 300_000)
    assert time.perf_counter() - start < 1.0
