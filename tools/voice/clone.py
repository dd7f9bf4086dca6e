"""Clone a voice: fit a new speaker vector of the frozen base acoustic model to a folder of recordings, and report on it.

Data flows one way, each stage a function below:

recordings folder (WAV/FLAC/MP3/OGG, any rate, mono or stereo) + transcripts (``<name>.txt``,
``metadata.csv``, ``transcripts.tsv`` or a Sphinx ``transcription`` file; Whisper tiny.en when asked)
→ :func:`read_recordings` (mono, quality checks, 22050 Hz, ends trimmed)
→ :func:`make_clip` (runtime frontend → ids; the loudness gain, log-mel, f0 and energy of
``voice.features``; the band the recording carries, :func:`recorded_band`) → :func:`align` (the base
aligner's durations) → :func:`split_long` (files over ``MAX_CLIP_SECONDS`` cut at the quietest aligned
word break, then re-extracted and re-aligned) → :func:`fit_speaker` (gradient descent on the speaker
vector alone through the frozen acoustic model, with ``voice.acoustic.losses``, the mel L1 only over the
bins under each clip's band edge; held-out clips stop it early) → :func:`fit_timbre` (a second vector
for the decoder alone, fitted with the encoder hearing the base voice) → :func:`match_pitch` (the base
voice's predicted F0 moved to the recordings' level) → adapter ``{"speaker", "encoder.speaker",
"decoder.speaker": float32 [1, 64], "pitch_scale": float32 [1]}`` → :func:`evaluate_clone` (float torch synthesis
of held-out texts with the clone and the base voice; speaker similarity, Whisper WER and MCD from
``workbench.metrics``; a spectrogram PNG).

Why speaker vectors: every graph of a pack takes a ``speaker`` [1, 64] input, and inside the graphs each
block's FiLM (γ, β = Linear(speaker), AdaSpeech's conditional layer norm with the norm folded away) is
the conditional layer norm, so a new row of the speaker table is an adapter every device already runs.
Each graph may get its own vector (``myna.voices.adapter_overrides``).  One vector for all three graphs
makes a clone as unclear as the few seconds it was fitted on: the encoder (durations, pitch, energy)
learns the reader's rhythm badly from them, and Whisper's WER doubles.  So by default the encoder keeps
the base voice's vector (rhythm and pronunciation of the best-trained speaker) and the decoder gets a
vector fitted for timbre under that rhythm; the vocoder keeps the first, whole-model vector.  192
parameters in all (far under 0.5 % of the base model).  The fitted vectors stay in the affine span of
the base speakers' rows (:func:`table_span`): every tier of a pack was trained on those rows only, so
only those directions mean the same thing on every tier.  The pack's vocoder graphs take the acoustic
table's rows through a folded least-squares map (``export_vocoder.fold_speaker_map``); the float report
path folds the same map, so the clone's vectors drive the vocoder as they will on a device.
Per-block FiLM deltas would need new graph inputs (docs/design/adapters-v2.md).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import logging
import math
import random
import re
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from myna.inference.acoustic import MAX_FRAMES_PER_PHONEME
from myna.voices import PITCH_SCALE_RANGE, adapter_value, pitch_scale
from myna.text.phonemes import BOS, CURRENT, EOS
from torch import nn
from workbench import metrics

from .acoustic import PITCH_UNIT_HZ, AcousticModel, Example, collate, losses, make_example, speaker_table
from .aligner import BREAK_IDS, Aligner, beta_binomial_log_prior, mas, normalise_mel
from .audio import AUDIO, log_mel, mel_band_edges, stft_magnitude
from .features import FeatureError, encode_phonemes, frame_energy, loudness_gain, world_f0
from .vocoder import Vocoder, synthesize as vocoder_synthesize

_LOGGER = logging.getLogger(__name__)

TOOL = "clone_voice.py"
VERSION = "0.3"
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus")
MAX_CLIP_SECONDS = 12.0
"""Longer recordings are split at pauses (training batches and the aligner's prior both prefer short clips)."""
MIN_PIECE_SECONDS = 1.0
"""A split never leaves a piece shorter than this."""
MAX_ALIGNED_SECONDS = 180.0
"""A transcribed file is aligned whole before it is split; longer ones would need gigabytes, so they are refused."""
MIN_TOTAL_SECONDS = 30.0
"""Less speech than this gets a warning (the issue's threshold)."""
CLIP_LEVEL = 0.999
"""A sample at or above this magnitude counts as clipped."""
MAX_CLIPPED_FRACTION = 0.001
MIN_SNR_DB = 20.0
MIN_SAMPLE_RATE = 16000
TRIM_DB = 40.0
"""Leading/trailing 10 ms frames this far under the loudest frame are trimmed ..."""
TRIM_MARGIN_S = 0.1
"""... except this much, so word onsets and releases are kept."""
HOLDOUT_FRACTION = 0.2
BAND_GONE_DB = -50.0
"""Above the frequency where a recording's speech spectrum stays this far under its 1–3 kHz level, it has no band left ..."""
BAND_TRANSITION_HZ = 1000.0
"""... and this much under that edge is the codec's or resampler's roll-off: the fit ignores the mel bins up there."""
TRANSCRIPT_FILES = ("metadata.csv", "transcripts.tsv", "transcription")
PITCH_MATCH_MIN_FRAMES = 200
"""Voiced frames (about 2.3 s) needed before the recordings' pitch level is trusted over the base voice's."""


class CloneError(ValueError):
    """The recordings or the base models cannot make a voice (the message says why, in one line)."""


# -- recordings and transcripts ---------------------------------------------------------------------


@dataclass(frozen=True)
class Quality:
    """What the checks saw in one recording, before any processing."""

    native_rate: int
    channels: int
    seconds: float
    """Duration before trimming."""
    clipped_fraction: float
    """Share of samples (all channels) at full scale."""
    snr_db: float
    """Rough SNR: loud (90th percentile) vs quiet (10th percentile) 20 ms frames; 99 for digital silence."""


@dataclass
class Recording:
    """One input file, read, mixed to mono, at the voice rate with its silent ends trimmed."""

    name: str
    """File stem (the key transcripts are matched by)."""
    path: Path
    text: str | None
    audio: np.ndarray
    """float64 mono at AUDIO.sample_rate, raw level (the loudness gain comes later)."""
    quality: Quality


def find_audio(folder: Path) -> list[Path]:
    """Audio files directly in ``folder`` (or its ``wav``/``wavs`` subfolder), sorted by name."""
    if not folder.is_dir():
        raise CloneError(f"{folder}: not a folder")
    found = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS]
    for sub in ("wav", "wavs"):
        if (folder / sub).is_dir():
            found += [p for p in (folder / sub).iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS]
    if not found:
        raise CloneError(f"{folder}: no audio files ({', '.join(AUDIO_EXTENSIONS)})")
    stems = [p.stem for p in found]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise CloneError(f"{folder}: several files share the name {dupes[0]!r} (one transcript could not tell them apart)")
    return sorted(found, key=lambda p: p.stem)


_SPHINX_LINE = re.compile(r"^\s*(?:<s>)?(?P<text>.*?)(?:</s>)?\s*\((?P<id>[^()]+)\)\s*$")


def read_transcripts(folder: Path) -> dict[str, str]:
    """Transcripts by file stem from every supported source in ``folder``; a ``<name>.txt`` wins over a table.

    * ``<name>.txt`` beside the audio (one utterance, whitespace collapsed);
    * ``metadata.csv``: LJSpeech ``name|text[|normalized text]`` lines, or a CSV with ``file``/``text``
      columns (a header row naming them);
    * ``transcripts.tsv``: ``name<TAB>text``;
    * ``transcription``: Sphinx/LibriVox ``<s> text </s> (name)`` lines (pocketsphinx-testdata's layout).
    """
    out: dict[str, str] = {}
    meta = folder / "metadata.csv"
    if meta.is_file():
        lines = [line for line in meta.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
        if lines and "|" in lines[0]:
            for line in lines:
                parts = line.split("|")
                if len(parts) >= 2:
                    out[Path(parts[0].strip()).stem] = (parts[2] if len(parts) > 2 and parts[2].strip() else parts[1]).strip()
        elif lines:
            rows = list(csv.reader(lines))
            header = [h.strip().lower() for h in rows[0]]
            if "text" in header and ({"file", "name", "id"} & set(header)):
                key = header.index(next(h for h in ("file", "name", "id") if h in header))
                text = header.index("text")
                rows = rows[1:]
            else:
                key, text = 0, 1
            for row in rows:
                if len(row) > max(key, text):
                    out[Path(row[key].strip()).stem] = row[text].strip()
    tsv = folder / "transcripts.tsv"
    if tsv.is_file():
        for line in tsv.read_text(encoding="utf-8-sig").splitlines():
            if "\t" in line:
                file_name, said = line.split("\t", 1)
                out[Path(file_name.strip()).stem] = said.strip()
    sphinx = folder / "transcription"
    if sphinx.is_file():
        for line in sphinx.read_text(encoding="utf-8", errors="replace").splitlines():
            m = _SPHINX_LINE.match(line)
            if m:
                out[Path(m["id"].strip()).stem] = m["text"].strip()
    for txt in list(folder.glob("*.txt")) + list(folder.glob("wav*/*.txt")):
        out[txt.stem] = " ".join(txt.read_text(encoding="utf-8-sig").split())
    return {k: " ".join(v.split()) for k, v in out.items() if v.strip()}


def read_audio_file(path: Path) -> tuple[np.ndarray, int]:
    """Samples [n, channels] float64 in [-1, 1] and the file's rate; soundfile first, librosa for what it cannot read."""
    import soundfile as sf

    try:
        audio, sr = sf.read(str(path), dtype="float64", always_2d=True)
        return audio, int(sr)
    except Exception as first:  # noqa: BLE001 - libsndfile lacks some MP3 variants; librosa (audioread) may manage
        try:
            import librosa

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y, sr = librosa.load(str(path), sr=None, mono=False)
        except Exception:  # noqa: BLE001
            raise CloneError(f"{path.name}: cannot read audio ({first})") from None
        y = np.atleast_2d(np.asarray(y, np.float64))
        return y.T, int(sr)


def _frame_power(audio: np.ndarray, sr: int, ms: float) -> np.ndarray:
    hop = max(1, int(sr * ms / 1000))
    n = audio.size // hop
    if n == 0:
        return np.array([float(np.mean(audio**2)) if audio.size else 0.0])
    return (audio[: n * hop].reshape(n, hop) ** 2).mean(axis=1)


def estimate_snr_db(audio: np.ndarray, sr: int) -> float:
    """Rough SNR of a mono recording: power of the loud (90th percentile) 20 ms frames over the quiet (10th percentile) ones.

    Speech always has gaps between words, so the quiet frames are the background; a clip with no
    background at all (digital silence) scores 99.
    """
    power = _frame_power(audio, sr, 20.0)
    noise, loud = float(np.percentile(power, 10)), float(np.percentile(power, 90))
    if loud <= 0:
        return 0.0
    if noise <= loud * 1e-10:
        return 99.0
    return float(min(99.0, 10.0 * math.log10(max(loud - noise, 1e-20) / noise)))


def trim_ends(audio: np.ndarray, sr: int, top_db: float = TRIM_DB, margin_s: float = TRIM_MARGIN_S) -> np.ndarray:
    """Drop leading and trailing silence (10 ms frames ``top_db`` under the loudest), keeping ``margin_s`` each side."""
    hop = max(1, int(sr * 0.01))
    power = _frame_power(audio, sr, 10.0)
    if power.max() <= 0:
        return audio
    loud = np.flatnonzero(power >= power.max() * 10.0 ** (-top_db / 10.0))
    margin = int(margin_s * sr)
    return audio[max(0, loud[0] * hop - margin) : min(audio.size, (loud[-1] + 1) * hop + margin)]


def read_recording(path: Path, text: str | None) -> Recording:
    """Read, check, mix to mono, resample to the voice rate and trim one file."""
    raw, sr = read_audio_file(path)
    if raw.size == 0:
        raise CloneError(f"{path.name}: no samples")
    clipped = float(np.mean(np.abs(raw) >= CLIP_LEVEL))
    mono = raw.mean(axis=1)
    quality = Quality(sr, raw.shape[1], raw.shape[0] / sr, clipped, estimate_snr_db(mono, sr))
    audio = trim_ends(metrics.resample(mono, sr, AUDIO.sample_rate), AUDIO.sample_rate)
    return Recording(path.stem, path, text, audio, quality)


def silence_cuts(audio: np.ndarray, sr: int, max_seconds: float = MAX_CLIP_SECONDS,
                 min_seconds: float = MIN_PIECE_SECONDS) -> list[np.ndarray]:
    """``audio`` cut at its quietest 100 ms stretches into pieces of at most ``max_seconds`` (before Whisper transcribes them).

    Only for recordings without a transcript: with one, the cut must fall between words of the text,
    which :func:`split_long` finds from the alignment instead.
    """
    hop = max(1, int(sr * 0.01))
    power = _frame_power(audio, sr, 10.0)
    smooth = np.convolve(power, np.ones(10) / 10, mode="same")
    max_f, min_f, n = int(max_seconds * 100), int(min_seconds * 100), power.size
    cuts: list[int] = []
    start = 0
    while n - start > max_f:
        lo, hi = start + min_f, min(start + max_f, n - min_f)
        if hi <= lo:
            break
        start = lo + int(np.argmin(smooth[lo:hi]))
        cuts.append(start)
    bounds = [0, *(c * hop for c in cuts), audio.size]
    return [audio[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def quality_warnings(recordings: Sequence[Recording], total_seconds: float) -> list[str]:
    """One line per problem the recordings have (empty when they look fine)."""
    out = []
    if total_seconds < MIN_TOTAL_SECONDS:
        out.append(f"only {total_seconds:.1f} s of speech in {len(recordings)} recording(s); at least "
                   f"{MIN_TOTAL_SECONDS:.0f} s is recommended, the clone will resemble the speaker less")

    def worst(bad: list[Recording], key: Callable[[Recording], float], reverse: bool) -> Recording:
        return sorted(bad, key=key, reverse=reverse)[0]

    bad = [r for r in recordings if r.quality.clipped_fraction > MAX_CLIPPED_FRACTION]
    if bad:
        w = worst(bad, lambda r: r.quality.clipped_fraction, True)
        out.append(f"clipped audio in {len(bad)} of {len(recordings)} recording(s) (worst {w.path.name}: "
                   f"{100 * w.quality.clipped_fraction:.2f} % of samples at full scale, over "
                   f"{100 * MAX_CLIPPED_FRACTION:.1f} %); the clone learns the distortion")
    bad = [r for r in recordings if r.quality.snr_db < MIN_SNR_DB]
    if bad:
        w = worst(bad, lambda r: r.quality.snr_db, False)
        out.append(f"noisy audio in {len(bad)} of {len(recordings)} recording(s) (worst {w.path.name}: estimated SNR "
                   f"{w.quality.snr_db:.0f} dB, under {MIN_SNR_DB:.0f} dB); the clone learns the noise")
    bad = [r for r in recordings if r.quality.native_rate < MIN_SAMPLE_RATE]
    if bad:
        w = worst(bad, lambda r: r.quality.native_rate, False)
        out.append(f"low sample rate in {len(bad)} of {len(recordings)} recording(s) ({w.path.name}: "
                   f"{w.quality.native_rate} Hz, under {MIN_SAMPLE_RATE} Hz); the fit leaves out the high band "
                   "the recording never had, so the clone's top comes from the base model, not the speaker")
    return out


# -- clips: text, features, alignment, splitting ----------------------------------------------------


@dataclass
class Clip:
    """One training or held-out utterance in the features-folder form (``docs/design/voice-training.md``)."""

    name: str
    text: str
    """Spoken words (the frontend's normalised form; what WER is scored against)."""
    ids: np.ndarray
    """int32 [N]: BOS + inventory ids + EOS."""
    audio: np.ndarray
    """float32, loudness-normalised, at the voice rate (what the mel saw)."""
    mel: np.ndarray
    f0: np.ndarray
    energy: np.ndarray
    gain: float
    durations: np.ndarray | None = None
    band_hz: float = AUDIO.fmax
    """Highest frequency the recording carries in full (:func:`recorded_band`); mel bins above it are not fitted."""

    @property
    def seconds(self) -> float:
        """Length of the audio."""
        return self.audio.size / AUDIO.sample_rate


class TextFrontend:
    """Myna's runtime English frontend as the corpus used it: written text → (spoken words, ids)."""

    def __init__(self) -> None:
        from myna.text.english import EnglishFrontend

        self.frontend = EnglishFrontend.load()

    def __call__(self, written: str, where: str) -> tuple[list[str], np.ndarray]:
        """Spoken words and ids of ``written``; CloneError naming ``where`` when nothing is speakable."""
        from workbench.corpus.generate import phoneme_sequence

        try:
            words = [w.spoken for w in self.frontend.words(written)]
            symbols = phoneme_sequence(self.frontend, written)
        except Exception as exc:  # noqa: BLE001 - the frontend's errors are all "this text is unusable"
            raise CloneError(f"{where}: cannot phonemize the transcript ({exc})") from None
        if not symbols:
            raise CloneError(f"{where}: the transcript has nothing speakable")
        try:
            return words, encode_phonemes(symbols, where)
        except FeatureError as exc:
            raise CloneError(str(exc)) from None


def recorded_band(audio: np.ndarray) -> float:
    """Highest frequency (Hz) a recording at the voice rate carries in full: under the edge where its band ends, less the roll-off.

    An MP3 at 64 kbit/s ends near 7.5 kHz, a 16 kHz file at 8 kHz, a phone call at 4 kHz. Above that edge
    the mean spectrum of the louder half of the STFT frames stays ``BAND_GONE_DB`` under its 1–3 kHz
    level (a real microphone's own noise floor does not, so full-band recordings keep every bin).
    Fitting a voice to those empty bins would teach it the codec's muffle, not the speaker's timbre.
    A click spreads over the whole band and can hide an edge, so :func:`make_clip` also caps the band
    by the file's own sample rate.
    """
    power = stft_magnitude(audio).astype(np.float64) ** 2
    loud = power.sum(axis=1) >= np.median(power.sum(axis=1))
    spectrum = power[loud].mean(axis=0)
    freqs = np.fft.rfftfreq(AUDIO.n_fft, 1.0 / AUDIO.sample_rate)
    reference = spectrum[(freqs >= 1000.0) & (freqs <= 3000.0)].mean()
    if reference <= 0:
        return AUDIO.sample_rate / 2.0
    level = 10.0 * np.log10(np.maximum(spectrum, 1e-30) / reference)
    present = np.flatnonzero((level > BAND_GONE_DB) & (freqs >= 2000.0))
    if present.size == 0 or present[-1] == freqs.size - 1:
        return AUDIO.sample_rate / 2.0
    return float(max(2000.0, freqs[present[-1] + 1] - BAND_TRANSITION_HZ))


def make_clip(name: str, text: str, ids: np.ndarray, audio: np.ndarray, max_band_hz: float = math.inf) -> Clip:
    """Features of one utterance exactly as ``voice.features.extract`` makes them (f0 on the raw audio, then the gain).

    ``max_band_hz`` caps the band :func:`recorded_band` finds (the recording's own Nyquist limit).
    """
    raw = np.asarray(audio, np.float64)
    frames = AUDIO.frames(raw.size)
    f0 = world_f0(raw, frames)
    gain = loudness_gain(raw, f0)
    normalised = (raw * gain).astype(np.float32)
    return Clip(name, text, np.asarray(ids, np.int32), normalised, log_mel(normalised), f0, frame_energy(normalised), gain,
                band_hz=min(recorded_band(raw), max_band_hz))


def native_band(native_rate: int) -> float:
    """The most a file recorded at ``native_rate`` Hz can carry in full: its Nyquist frequency less the resampler's roll-off."""
    return max(2000.0, native_rate / 2.0 - BAND_TRANSITION_HZ)


def mel_bins_within(band_hz: float) -> np.ndarray:
    """float32 [M]: 1 for the mel bins whose filter lies wholly under ``band_hz``, 0 above."""
    tops = mel_band_edges()[2:]
    return (tops <= band_hz + 1e-6).astype(np.float32)


@torch.no_grad()
def align(aligner: Aligner, clip: Clip) -> np.ndarray:
    """Frames per id of ``clip`` (MAS over the aligner's soft alignment with its prior); ValueError when T < N."""
    n, t = clip.ids.size, clip.mel.shape[0]
    if t < n:
        raise ValueError(f"{t} frames cannot hold {n} ids")
    logp = aligner(torch.from_numpy(clip.ids.astype(np.int64))[None], torch.tensor([n]),
                   torch.from_numpy(normalise_mel(clip.mel))[None],
                   beta_binomial_log_prior(n, t, aligner.cfg.prior_scale)[None])
    return mas(logp[0].numpy().T.astype(np.float64))


def word_breaks(ids: np.ndarray) -> list[int]:
    """Positions of the word breaks (a " " or a pause followed by more speech), as ``aligner.myna_boundaries`` counts them."""
    eos = CURRENT.id_of(EOS)
    return [i for i, tok in enumerate(ids[:-1])
            if tok in BREAK_IDS and ids[i + 1] != eos and ids[i + 1] not in BREAK_IDS]


def split_points(clip: Clip, max_frames: int, min_frames: int) -> list[int]:
    """Indices into ``word_breaks(clip.ids)`` to cut at so no piece is longer than ``max_frames`` (where breaks allow).

    Among the breaks that keep the piece within bounds, the quietest (lowest frame energy around the
    middle of the break's aligned span) wins: that is where the speaker paused.
    """
    assert clip.durations is not None
    breaks = word_breaks(clip.ids)
    ends = np.cumsum(clip.durations)
    centre = [int(ends[i] - clip.durations[i] // 2) for i in breaks]  # the middle of the break's span
    total = int(ends[-1])
    cuts: list[int] = []
    start = 0
    while total - start > max_frames:
        window = [k for k, c in enumerate(centre) if start + min_frames <= c <= start + max_frames and total - c >= min_frames]
        if not window:
            later = [k for k, c in enumerate(centre) if c > start + min_frames and total - c >= min_frames]
            if not later:
                break
            window = later[:1]

        def loudness(k: int) -> float:
            c = centre[k]
            return float(np.mean(clip.energy[max(0, c - 2) : c + 3]))

        best = min(window, key=loudness)
        cuts.append(best)
        start = centre[best]
    return cuts


def split_long(clip: Clip, words: Sequence[str], aligner: Aligner, max_seconds: float = MAX_CLIP_SECONDS) -> list[Clip]:
    """``clip`` cut at pauses into pieces of at most ``max_seconds`` (each re-extracted and re-aligned); ``[clip]`` if short."""
    hop, sr = AUDIO.hop_length, AUDIO.sample_rate
    max_frames = int(max_seconds * sr / hop)
    if clip.durations is None or clip.mel.shape[0] <= max_frames:
        return [clip]
    breaks = word_breaks(clip.ids)
    cuts = split_points(clip, max_frames, int(MIN_PIECE_SECONDS * sr / hop))
    if not cuts:
        return [clip]
    ends = np.cumsum(clip.durations)
    raw = clip.audio.astype(np.float64) / clip.gain
    bos, eos = CURRENT.id_of(BOS), CURRENT.id_of(EOS)
    words_match = len(words) == len(breaks) + 1
    pieces = []
    id_start, frame_start, word_start = 0, 0, 0
    for n, k in enumerate([*cuts, None]):
        if k is None:
            id_end, frame_end, word_end = clip.ids.size - 1, int(ends[-1]), len(words)
        else:
            b = breaks[k]
            id_end, frame_end, word_end = b, int(ends[b] - clip.durations[b] // 2), k + 1
        ids = np.concatenate([[bos], clip.ids[id_start + 1 : id_end], [eos]]).astype(np.int32)
        text = " ".join(words[word_start:word_end]) if words_match else ""
        piece = make_clip(f"{clip.name}-{n + 1:02d}", text, ids, raw[frame_start * hop : frame_end * hop], clip.band_hz)
        try:
            piece.durations = align(aligner, piece)
        except ValueError:
            continue
        pieces.append(piece)
        id_start, frame_start, word_start = id_end, frame_end, word_end
    return pieces


def holdout_split(clips: Sequence[Clip], fraction: float = HOLDOUT_FRACTION) -> tuple[list[Clip], list[Clip]]:
    """(train, held-out): a fixed ``fraction`` (at least one) chosen by a hash of the clip names, so reruns agree."""
    if len(clips) < 2:
        raise CloneError(f"{len(clips)} usable clip(s); cloning needs at least 2 (one is held out to stop training)")
    order = sorted(clips, key=lambda c: hashlib.sha1(c.name.encode()).hexdigest())
    k = min(len(clips) - 1, max(1, round(fraction * len(clips))))
    held = {c.name for c in order[:k]}
    return [c for c in clips if c.name not in held], [c for c in clips if c.name in held]


# -- fitting the speaker vector ---------------------------------------------------------------------


def example_of(clip: Clip) -> Example:
    """The acoustic model's targets of an aligned clip, computed as for the training corpus."""
    assert clip.durations is not None
    return make_example(clip.ids, clip.durations, clip.f0, clip.energy, clip.mel)


@dataclass(frozen=True)
class FitSettings:
    """How the speaker vector is fitted."""

    steps: int = 400
    """Most optimiser steps."""
    lr: float = 0.01
    batch: int = 16
    """Clips per step (all of them when fewer)."""
    eval_every: int = 10
    patience: int = 6
    """Stop after this many held-out evaluations without improvement."""
    max_minutes: float = 10.0
    stop_on: str = "total"
    """Held-out loss that picks the best vector and stops training: ``total`` (the objective itself) or ``mel``."""
    pull: float = 0.0
    """Weight of an L2 pull of the vector towards its starting row (mean squared difference per dimension).

    The fit has a few clips; the further the vector leaves the training speakers' region, the less the
    model has learnt what it does there (the clone's WER rises), so a pull trades likeness for clarity."""
    init: str = "nearest"
    """``nearest``: the table row (or the table mean) with the lowest teacher-forced loss on the training clips; ``mean``."""
    seed: int = 0
    span: bool = True
    """Keep the vectors in the affine span of the base model's speaker rows (fit their coefficients): every
    tier of a pack learnt those directions, so a clone fitted on one tier also speaks on the others."""
    rhythm: str = "base"
    """``base``: the encoder keeps the base voice's vector and the decoder gets its own, fitted for timbre
    (:func:`fit_timbre`); ``clone``: one vector for every graph."""
    pitch: str = "match"
    """With ``rhythm`` ``base``: ``match`` gives the adapter a ``pitch_scale`` (:func:`match_pitch`) that moves
    the base voice's predicted F0 to the recordings' level; ``base`` keeps the base voice's pitch."""


@dataclass
class FitResult:
    """The fitted vector and how it got there."""

    speaker: np.ndarray
    """float32 [S]: the clone's row."""
    init: str
    """Where it started (a base speaker's name or ``table mean``)."""
    initial_valid: dict[str, float]
    best_valid: dict[str, float]
    best_step: int
    steps: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    stopped: str = ""
    """Why training ended: ``early stop``, ``steps`` or ``time``."""


def _batch(clips: Sequence[Clip], model: AcousticModel) -> Any:
    return collate([example_of(c) for c in clips], [0] * len(clips), model.cfg)


def _bins(clips: Sequence[Clip]) -> torch.Tensor:
    """float [B, 1, M]: the mel bins each clip's recording carries (``losses``' ``mel_bins``)."""
    return torch.from_numpy(np.stack([mel_bins_within(c.band_hz) for c in clips])[:, None, :])


@torch.no_grad()
def _loss_values(model: AcousticModel, batch: Any, mel_bins: torch.Tensor | None = None) -> dict[str, float]:
    return {k: float(v) for k, v in losses(model, batch, mel_bins).items()}


def _use_vector(model: AcousticModel, vector: np.ndarray | torch.Tensor, trainable: bool) -> nn.Embedding:
    """Make ``model.speakers`` a one-row table holding ``vector``: ``losses`` then runs the clone unchanged."""
    weight = torch.as_tensor(np.asarray(vector, np.float32) if isinstance(vector, np.ndarray) else vector).reshape(1, -1)
    model.speakers = nn.Embedding.from_pretrained(weight.clone(), freeze=not trainable)
    return model.speakers


class _SpanRow(nn.Module):
    """A one-row speaker table whose row stays ``origin + coefficients @ basis`` (rows of ``basis`` orthonormal)."""

    def __init__(self, origin: np.ndarray, basis: np.ndarray, start: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("origin", torch.as_tensor(np.asarray(origin, np.float32)))
        self.register_buffer("basis", torch.as_tensor(np.asarray(basis, np.float32)))
        self.coefficients = nn.Parameter((torch.as_tensor(np.asarray(start, np.float32)) - self.origin) @ self.basis.T)

    @property
    def weight(self) -> torch.Tensor:
        """[1, S], like ``nn.Embedding.weight`` of a one-row table."""
        return (self.origin + self.coefficients @ self.basis)[None]

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.weight.expand(rows.shape[0], -1)


def table_span(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean row, orthonormal basis [k, S]) of the affine span of a speaker table's rows."""
    table = np.asarray(table, np.float64)
    mean = table.mean(axis=0)
    _, sv, vt = np.linalg.svd(table - mean, full_matrices=False)
    return mean, vt[sv > sv.max() * 1e-6] if sv.size and sv.max() > 0 else vt[:0]


def fit_speaker(model: AcousticModel, names: Sequence[str], train: Sequence[Clip], held: Sequence[Clip],
                settings: FitSettings = FitSettings(), progress: bool = True) -> FitResult:
    """Fit one speaker row by gradient descent through the frozen model (eval mode: BatchNorm statistics fixed).

    Loss: ``voice.acoustic.losses`` (mel L1 + duration, pitch and energy MSE) on the training clips;
    the vector with the lowest held-out ``settings.stop_on`` loss is kept.  ``model.speakers`` is replaced by the one-row table.
    """
    t0 = time.time()
    if settings.stop_on not in ("total", "mel"):
        raise CloneError(f"unknown stopping loss {settings.stop_on!r} (total, mel)")
    table = speaker_table(model)
    _freeze(model)
    candidates = [("table mean", table.mean(axis=0))]
    if settings.init == "nearest":
        candidates += list(zip(names, table))
    elif settings.init != "mean":
        raise CloneError(f"unknown init {settings.init!r} (nearest, mean)")
    scoring, scoring_bins = _batch(train[: settings.batch], model), _bins(train[: settings.batch])
    scored = []
    for name, row in candidates:
        _use_vector(model, row, trainable=False)
        scored.append((_loss_values(model, scoring, scoring_bins)["total"], name, row))
    _, init_name, init_row = min(scored, key=lambda s: s[0])
    span = table_span(table) if settings.span else None
    return _descend(model, init_row, init_name, train, held, settings, settings.stop_on, "fitting speaker", t0, progress, span)


def fit_timbre(model: AcousticModel, table: np.ndarray, encoder_row: np.ndarray, start: np.ndarray, train: Sequence[Clip],
               held: Sequence[Clip], settings: FitSettings = FitSettings(), progress: bool = True) -> FitResult:
    """Fit the decoder's own vector (timbre) while the encoder hears ``encoder_row``; start from ``start`` (``table``: the base rows).

    Teacher-forced like :func:`fit_speaker` (the true durations, pitch and energy of the clips), so only
    the mel loss depends on the vector and it alone stops the fit.  ``model.speakers`` ends as the decoder's row."""
    t0 = time.time()
    _freeze(model)
    fixed = torch.as_tensor(np.asarray(encoder_row, np.float32)).reshape(1, -1)
    encode = model.encode
    # losses() passes one speaker to both halves of the model; the encoder is re-pointed at the base row.
    model.encode = lambda ids, speaker, *rest: encode(ids, fixed.expand(speaker.shape[0], -1), *rest)  # type: ignore[method-assign]
    try:
        return _descend(model, np.asarray(start, np.float32), "the whole-model vector", train, held, settings, "mel",
                        "fitting timbre", t0, progress, table_span(table) if settings.span else None)
    finally:
        del model.encode  # back to the class's method


@torch.no_grad()
def match_pitch(model: AcousticModel, encoder_row: np.ndarray, clips: Sequence[Clip]) -> tuple[float, float] | None:
    """(pitch scale, the recordings' mean F0 in Hz): the factor that moves the F0 the encoder predicts with
    ``encoder_row`` to the F0 the clips were spoken at; None with under ``PITCH_MATCH_MIN_FRAMES`` voiced frames.

    Why: :func:`fit_timbre` fits the decoder's vector on the recordings' own pitch (teacher-forced), but on
    a device the decoder hears the base voice's predicted pitch.  Left unmatched, a reader who speaks lower
    than the base voice gets a timbre driven at a pitch it was never fitted at, and Whisper mishears more
    of its words (``docs/voice-cloning.md``).  The scale is the frame-weighted geometric mean of target over
    predicted F0 on the phonemes voiced in both, clipped to ``PITCH_SCALE_RANGE``."""
    _freeze(model)
    batch = _batch(clips, model)
    row = torch.as_tensor(np.asarray(encoder_row, np.float32)).reshape(1, -1).expand(len(clips), -1)
    predicted = model.encode(batch.ids, row).pitch.numpy().astype(np.float64)
    target = batch.pitch.numpy().astype(np.float64)
    frames = np.zeros_like(target)
    for i, clip in enumerate(clips):
        assert clip.durations is not None
        frames[i, : clip.durations.size] = clip.durations
    # Pitch is in 100 Hz units; under 40 Hz is no voice, only an unvoiced phoneme's near-zero prediction.
    voiced = (target > 0.4) & (predicted > 0.4) & (frames > 0)
    if frames[voiced].sum() < PITCH_MATCH_MIN_FRAMES:
        return None
    w = frames[voiced]
    log_ratio = float(np.sum(w * (np.log(target[voiced]) - np.log(predicted[voiced]))) / w.sum())
    mean_hz = float(np.exp(np.sum(w * np.log(target[voiced])) / w.sum()) * PITCH_UNIT_HZ)
    return float(np.clip(np.exp(log_ratio), *PITCH_SCALE_RANGE)), mean_hz


def _freeze(model: AcousticModel) -> None:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)


def _descend(model: AcousticModel, init_row: np.ndarray, init_name: str, train: Sequence[Clip], held: Sequence[Clip],
             settings: FitSettings, key: str, desc: str, t0: float, progress: bool,
             span: tuple[np.ndarray, np.ndarray] | None) -> FitResult:
    """Adam on one speaker row from ``init_row`` (inside ``span`` when given), minimising loss ``key`` with
    held-out early stopping; the best row is kept."""
    from tqdm import tqdm

    train_batch = (_batch(train, model), _bins(train)) if len(train) <= settings.batch else None
    held_batch, held_bins = _batch(held, model), _bins(held)
    emb: nn.Module
    if span is None:
        emb = _use_vector(model, init_row, trainable=True)
    else:
        emb = model.speakers = _SpanRow(*span, init_row)
    anchor = torch.as_tensor(np.asarray(init_row, np.float32))
    opt = torch.optim.Adam(emb.parameters(), lr=settings.lr)
    initial = _loss_values(model, held_batch, held_bins)
    best, best_vec, best_step = initial, init_row.astype(np.float32).copy(), 0
    history: list[dict[str, float]] = [{"step": 0, **{f"valid_{k}": v for k, v in initial.items()}}]
    rng = random.Random(settings.seed)
    stale, step, stopped = 0, 0, "steps"
    bar = tqdm(total=settings.steps, unit="step", desc=desc, disable=not progress, dynamic_ncols=True)
    while step < settings.steps:
        if (time.time() - t0) / 60 >= settings.max_minutes:
            stopped = "time"
            break
        if train_batch is not None:
            batch, bins = train_batch
        else:
            picked = rng.sample(list(train), settings.batch)
            batch, bins = _batch(picked, model), _bins(picked)
        terms = losses(model, batch, bins)
        objective = terms[key]
        if settings.pull:
            objective = objective + settings.pull * torch.mean((emb.weight[0] - anchor) ** 2)
        opt.zero_grad(set_to_none=True)
        objective.backward()
        opt.step()
        loss = {k: float(v.detach()) for k, v in terms.items()}
        step += 1
        bar.update()
        if step % settings.eval_every == 0 or step == settings.steps:
            valid = _loss_values(model, held_batch, held_bins)
            history.append({"step": step, "train_total": loss["total"], "train_mel": loss["mel"],
                            **{f"valid_{k}": v for k, v in valid.items()}})
            if valid[key] < best[key]:
                best, best_vec, best_step, stale = valid, emb.weight.detach()[0].numpy().copy(), step, 0
            else:
                stale += 1
            bar.set_postfix(train=f"{loss[key]:.3f}", held=f"{valid[key]:.3f}", best=f"{best[key]:.3f}")
            if not progress:  # a log without a bar still shows the run moving
                print(f"{desc} step {step}: train {key} loss {loss[key]:.4f}, held-out {valid[key]:.4f} "
                      f"(best {best[key]:.4f} at step {best_step}), {time.time() - t0:.0f} s", flush=True)
            if stale >= settings.patience:
                stopped = "early stop"
                break
    bar.close()
    _use_vector(model, best_vec, trainable=False)
    return FitResult(best_vec.astype(np.float32), init_name, initial, best, best_step, step, time.time() - t0, history, stopped)


# -- float synthesis --------------------------------------------------------------------------------


Adapter = Mapping[str, np.ndarray]
"""Graph input name (or ``<role>.<name>`` override) → array, as in a pack's adapter file."""


class FloatVoice:
    """The base acoustic model and vocoder in float torch, the vocoder taking acoustic-table rows (as in the pack)."""

    def __init__(self, acoustic: AcousticModel, names: Sequence[str], vocoder: Vocoder, vocoder_table: np.ndarray,
                 vocoder_names: Sequence[str], table: np.ndarray) -> None:
        """Fold the least-squares map from the acoustic table to the vocoder's own rows into the vocoder's FiLMs."""
        from .export_vocoder import fold_speaker_map

        common = [s for s in vocoder_names if s in names]
        if not common:
            raise CloneError("the vocoder and the acoustic model share no speaker; no speaker map can be fitted")
        own = np.asarray(vocoder_table, np.float64)[[list(vocoder_names).index(s) for s in common]]
        target = np.asarray(table, np.float64)[[list(names).index(s) for s in common]]
        state, self.map_residual = fold_speaker_map(vocoder.state_dict(), own, target)
        vocoder.load_state_dict(state)
        self.acoustic, self.vocoder = acoustic.eval(), vocoder.eval()
        self.map_speakers = common

    @torch.no_grad()
    def mel(self, ids: np.ndarray, adapter: Adapter) -> np.ndarray:
        """Predicted log-mel [T, 80]: the runtime's length regulation in one window (no chunking)."""
        enc = self.acoustic.encode(torch.from_numpy(np.asarray(ids, np.int64))[None], _row(adapter, "encoder"))
        dur = np.clip(np.rint(np.exp(enc.log_duration[0].double().numpy())), 0, MAX_FRAMES_PER_PHONEME).astype(np.int64)
        if dur.sum() == 0:
            dur[:] = 1
        index = torch.from_numpy(np.repeat(np.arange(dur.size), dur))
        frames = enc.hidden[0, index][None]
        pitch = enc.pitch[0, index][None, :, None] * pitch_scale(adapter)  # as the runtime's encoder stage does
        c = self.acoustic.cfg.decoder_context
        mel = self.acoustic.decode(F.pad(frames, (0, 0, c, c)), F.pad(pitch, (0, 0, c, c)), _row(adapter, "decoder"))
        return mel[0, c : c + index.numel()].numpy()

    @torch.no_grad()
    def speak(self, ids: np.ndarray, adapter: Adapter) -> np.ndarray:
        """Audio (float32 at the voice rate) of ``ids`` spoken with an adapter (``speaker`` and per-graph overrides)."""
        mel = torch.from_numpy(self.mel(ids, adapter))[None]
        audio = vocoder_synthesize(self.vocoder, mel, _row(adapter, "vocoder"))[0].numpy()
        return np.clip(audio, -1.0, 1.0).astype(np.float32)


def _row(adapter: Adapter, role: str) -> torch.Tensor:
    value = adapter_value(adapter, role, "speaker")
    if value is None:
        raise CloneError(f"adapter without a speaker vector for the {role}")
    return torch.from_numpy(np.asarray(value, np.float32).reshape(1, -1))


# -- report -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportSettings:
    """Which metrics the report computes (each is optional so tests and quick runs stay fast)."""

    asr: bool = True
    """Whisper tiny.en WER."""
    similarity: bool = True
    """resemblyzer speaker similarity."""
    mcd: bool = True
    threads: int = 1
    eval_sentences: tuple[str, ...] = ()
    """Extra texts the clone speaks for the similarity figure (e.g. the shared evaluation sentences)."""
    device: bool = True
    """Also speak ``eval_sentences`` through the device runtime with the base pack's graphs (needs the pack)."""


def _try(what: str, fn: Callable[[], Any], errors: dict[str, str]) -> Any:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - one failing metric must not lose the others or the adapter
        _LOGGER.warning("%s failed: %s", what, exc)
        errors[what] = f"{type(exc).__name__}: {exc}"
        return None


def _corpus_wer(refs: Sequence[str], hyps: Sequence[str]) -> float | None:
    pairs = [metrics.word_edits(r, h) for r, h in zip(refs, hyps) if r]
    words = sum(w for _, w in pairs)
    return sum(e for e, _ in pairs) / words if words else None


DeviceRender = Callable[[int, str], tuple[np.ndarray, int]]
"""(sentence index, text) → (audio, rate): the clone through the device runtime and the pack's INT8 graphs."""


def evaluate_clone(voice: FloatVoice, clone: Adapter, base: Adapter, base_name: str, held: Sequence[Clip],
                   everything: Sequence[Clip], frontend: TextFrontend | None, settings: ReportSettings,
                   out_dir: Path | None = None, progress: bool = True, device: DeviceRender | None = None) -> dict[str, Any]:
    """Metrics of the clone and of the base voice on the held-out clips (and the extra sentences); wavs under ``out_dir``.

    With ``device``, the extra sentences are also spoken by the device runtime (what a board will play)."""
    from tqdm import tqdm

    sr = AUDIO.sample_rate
    errors: dict[str, str] = {}
    rows = []
    for clip in tqdm(held, desc="rendering held-out", unit="clip", disable=not progress):
        rows.append({"name": clip.name, "text": clip.text, "seconds": clip.seconds,
                     "clone": voice.speak(clip.ids, clone), "base": voice.speak(clip.ids, base), "target": clip.audio})
    if out_dir is not None:
        import soundfile as sf

        out_dir.mkdir(parents=True, exist_ok=True)
        for r in rows:
            for who in ("target", "clone", "base"):
                sf.write(str(out_dir / f"{r['name']}-{who}.wav"), r[who], sr, subtype="PCM_16")
    result: dict[str, Any] = {"held_out_clips": len(held), "base_voice": base_name, "errors": errors,
                              "synthesis": "float torch (acoustic model + vocoder with the pack's folded speaker map), "
                                           "whole utterance in one window; not the INT8 device graphs"}
    targets = [(r["target"], sr) for r in rows]
    if settings.similarity:
        result["similarity_clone"] = _try("similarity", lambda: metrics.speaker_similarity([(r["clone"], sr) for r in rows], targets), errors)
        result["similarity_base"] = _try("similarity", lambda: metrics.speaker_similarity([(r["base"], sr) for r in rows], targets), errors)
        train = [(c.audio, sr) for c in everything if c.name not in {h.name for h in held}]
        if train:
            result["similarity_ceiling"] = _try("similarity", lambda: metrics.speaker_similarity(train, targets), errors)
    if settings.mcd:
        for who in ("clone", "base"):
            values = [_try("mcd", functools.partial(metrics.mcd, r["target"], sr, r[who], sr), errors) for r in rows]
            ok = [v for v in values if v is not None]
            result[f"mcd_{who}_db"] = float(np.mean(ok)) if ok else None
            for r, v in zip(rows, values):
                r[f"mcd_{who}_db"] = v
    if settings.asr:
        for who in ("clone", "base", "target"):
            texts = [_try("asr", functools.partial(metrics.transcribe, r[who], sr, threads=settings.threads), errors) for r in rows]
            for r, t in zip(rows, texts):
                r[f"transcript_{who}"] = t
            result[f"wer_{who}"] = _corpus_wer([r["text"] for r in rows], [t or "" for t in texts])
    if settings.eval_sentences and frontend is not None:
        sentences = []
        for i, text in enumerate(tqdm(settings.eval_sentences, desc="rendering sentences", unit="sent", disable=not progress)):
            try:
                _, ids = frontend(text, f"sentence {i + 1}")
            except CloneError as exc:
                errors[f"sentence {i + 1}"] = str(exc)
                continue
            sentences.append({"index": i + 1, "text": text, "clone": voice.speak(ids, clone), "base": voice.speak(ids, base)})
        if out_dir is not None and sentences:
            import soundfile as sf

            for s in sentences:
                sf.write(str(out_dir / f"sentence-{s['index']:03d}-clone.wav"), s["clone"], sr, subtype="PCM_16")
        every = [(c.audio, sr) for c in everything]
        summary: dict[str, Any] = {"count": len(sentences)}
        if settings.similarity and sentences:
            summary["similarity_clone"] = _try("similarity", lambda: metrics.speaker_similarity([(s["clone"], sr) for s in sentences], every), errors)
            summary["similarity_base"] = _try("similarity", lambda: metrics.speaker_similarity([(s["base"], sr) for s in sentences], every), errors)
        if settings.asr and sentences:
            hyps = [_try("asr", functools.partial(metrics.transcribe, s["clone"], sr, threads=settings.threads), errors) or "" for s in sentences]
            summary["wer_clone"] = _corpus_wer([s["text"] for s in sentences], hyps)
        if device is not None:
            _device_summary(device, settings, every, summary, errors, progress)
        result["sentences"] = summary
    result["clips"] = [{k: v for k, v in r.items() if not isinstance(v, np.ndarray)} for r in rows]
    result["_audio"] = rows  # for the plot; dropped before JSON
    return result


def _device_summary(device: DeviceRender, settings: ReportSettings, every: Sequence[tuple[np.ndarray, int]],
                    summary: dict[str, Any], errors: dict[str, str], progress: bool) -> None:
    from tqdm import tqdm

    spoken = []
    for i, text in enumerate(tqdm(settings.eval_sentences, desc="device graphs", unit="sent", disable=not progress)):
        audio = _try(f"device sentence {i + 1}", functools.partial(device, i + 1, text), errors)
        if audio is not None:
            spoken.append((text, audio))
    summary["device_count"] = len(spoken)
    if settings.similarity and spoken:
        summary["device_similarity_clone"] = _try("similarity", lambda: metrics.speaker_similarity([a for _, a in spoken], every), errors)
    if settings.asr and spoken:
        hyps = [_try("asr", functools.partial(metrics.transcribe, a[0], a[1], threads=settings.threads), errors) or ""
                for _, a in spoken]
        summary["device_wer_clone"] = _corpus_wer([t for t, _ in spoken], hyps)
        summary["device_errors"] = [{"text": t, "heard": h} for (t, _), h in zip(spoken, hyps) if metrics.wer(t, h) > 0]


def plot_spectrograms(path: Path, row: Mapping[str, Any], title: str) -> None:
    """Target vs clone (vs base) log-mel spectrograms of one held-out clip, on one colour scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(k, log_mel(np.asarray(row[k], np.float32))) for k in ("target", "clone", "base") if k in row]
    lo = min(float(np.percentile(m, 2)) for _, m in panels)
    hi = max(float(m.max()) for _, m in panels)
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.4 * len(panels)), sharex=True)
    for ax, (label, mel) in zip(np.atleast_1d(axes), panels):
        ax.imshow(mel.T, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="magma",
                  extent=(0, mel.shape[0] * AUDIO.hop_length / AUDIO.sample_rate, 0, mel.shape[1]))
        ax.set_ylabel(f"{label}\nmel bin")
    np.atleast_1d(axes)[-1].set_xlabel("seconds")
    # imshow sets the shared axis to the last panel's extent; show the longest clip whole.
    np.atleast_1d(axes)[-1].set_xlim(0, max(m.shape[0] for _, m in panels) * AUDIO.hop_length / AUDIO.sample_rate)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(report: Mapping[str, Any], png_name: str | None) -> str:
    """The docs-ready Markdown report of one cloned voice."""
    d, fit, ev = report["data"], report["fit"], report.get("evaluation", {})
    lines = [f"# Cloned voice `{report['voice_id']}` ({report['name']})", "",
             f"Made by {TOOL} {VERSION} on {report['created']} from {d['recordings']} recording(s) in "
             f"`{report['recordings_dir']}` ({d['seconds']:.1f} s of speech after trimming, {d['clips']} clips: "
             f"{d['train_clips']} for fitting, {d['held_out_clips']} held out).", "",
             "Base models (the clone is only as good as they are): acoustic `{acoustic}`, vocoder `{vocoder}`, "
             "aligner `{aligner}`.".format(**report["base"]), ""]
    bands = d.get("band_hz") or {}
    if bands and min(bands.values()) < AUDIO.fmax:
        low = min(bands.values())
        lines += [f"The recordings carry sound up to {low / 1000:.1f}–{max(bands.values()) / 1000:.1f} kHz (a codec or a low "
                  f"sample rate cut the rest): the fit leaves out the mel bins above each clip's band, so the clone "
                  f"does not learn the missing top as part of the voice ({int(mel_bins_within(low).sum())} of "
                  f"{AUDIO.n_mels} bins kept for the narrowest clip).", ""]
    if report["warnings"]:
        lines += ["## Warnings", ""] + [f"- {w}" for w in report["warnings"]] + [""]
    a = report["adapter"]
    tensors = a.get("tensors") or {"speaker": [1, a["dim"]]}
    lines += ["## Adapter", "",
              f"{len(tensors)} speaker vector(s), " + ", ".join(f"`{k}` float32 {v}" for k, v in tensors.items())
              + f": {a['params']} parameters = {100 * a['fraction_of_acoustic']:.4f} % of the acoustic model "
              f"({a['acoustic_params']:,} parameters), {100 * a['fraction_of_base']:.4f} % of acoustic + vocoder "
              "(limit 0.5 %). They enter the graphs through the FiLM layers (conditional layer norm).", ""]
    if a.get("rhythm") == "base":
        lines += [f"Rhythm and pronunciation come from the base voice `{report['base']['baseline_speaker']}`: the "
                  "encoder (durations, pitch, energy) gets its vector (`encoder.speaker`), the decoder a vector fitted "
                  "for timbre under that rhythm (`decoder.speaker`), the vocoder the whole-model vector (`speaker`).", ""]
    if report.get("pitch"):
        lines += [f"Pitch: the recordings average {report['pitch']['recordings_hz']:.0f} Hz, so the adapter's `pitch_scale` "
                  f"({report['pitch']['scale']:.3f}) moves the base voice's predicted F0 to that level; the timbre "
                  "vector was fitted at the recordings' own pitch.", ""]
    if fit["settings"].get("span"):
        lines += [f"The fitted vectors stay in the affine span of the base model's {len(report['base']['speakers'])} speaker "
                  "rows (their coefficients are fitted): every tier learnt those directions.", ""]
    lines += [f"Whole-model vector: fitted from `{fit['init']}` for {fit['steps']} steps ({fit['seconds']:.1f} s, stopped by {fit['stopped']}); "
              f"best held-out {fit['settings']['stop_on']} loss at step {fit['best_step']}. Held-out losses before → after: mel "
              f"{fit['initial_valid']['mel']:.4f} → {fit['best_valid']['mel']:.4f}, total "
              f"{fit['initial_valid']['total']:.4f} → {fit['best_valid']['total']:.4f}.", ""]
    timbre = report.get("timbre")
    if timbre:
        lines += [f"Timbre vector: {timbre['steps']} steps ({timbre['seconds']:.1f} s, stopped by {timbre['stopped']}); "
                  f"held-out mel {timbre['initial_valid']['mel']:.4f} → {timbre['best_valid']['mel']:.4f}.", ""]
    if ev:
        lines += ["## Held-out clips", "", f"Synthesis: {ev.get('synthesis', '')}.", "",
                  f"| | clone | base voice `{ev['base_voice']}` |", "|---|---|---|",
                  f"| speaker similarity to the target (resemblyzer cosine) | {_fmt(ev.get('similarity_clone'))} | {_fmt(ev.get('similarity_base'))} |",
                  f"| WER (Whisper tiny.en) | {_fmt(ev.get('wer_clone'))} | {_fmt(ev.get('wer_base'))} |",
                  f"| MCD vs the real clip (dB, DTW) | {_fmt(ev.get('mcd_clone_db'), 2)} | {_fmt(ev.get('mcd_base_db'), 2)} |", ""]
        if ev.get("similarity_ceiling") is not None:
            lines += [f"The target's own fitting clips score {ev['similarity_ceiling']:.3f} against its held-out clips "
                      "(the same-speaker ceiling); different speakers score about 0.6.", ""]
        if ev.get("wer_target") is not None:
            lines += [f"Whisper on the real held-out clips: WER {ev['wer_target']:.3f} (the transcripts' own floor).", ""]
        s = ev.get("sentences")
        if s:
            lines += [f"Evaluation sentences ({s['count']}) spoken by the clone vs all the target's clips: similarity "
                      f"{_fmt(s.get('similarity_clone'))} (base voice {_fmt(s.get('similarity_base'))}), WER {_fmt(s.get('wer_clone'))}"
                      " (float synthesis).", ""]
            if s.get("device_count"):
                lines += [f"The same sentences through the device runtime and the pack's graphs ({ev.get('device', '')}): "
                          f"similarity {_fmt(s.get('device_similarity_clone'))}, WER {_fmt(s.get('device_wer_clone'))}.", ""]
        lines += ["| clip | seconds | text | MCD clone / base (dB) |", "|---|---|---|---|"]
        for c in ev["clips"]:
            lines.append(f"| {c['name']} | {c['seconds']:.1f} | {c['text'][:80]} | "
                         f"{_fmt(c.get('mcd_clone_db'), 2)} / {_fmt(c.get('mcd_base_db'), 2)} |")
        lines.append("")
        if ev.get("errors"):
            lines += ["Metric failures: " + "; ".join(f"{k}: {v}" for k, v in ev["errors"].items()), ""]
    if png_name:
        lines += [f"![target vs clone vs base log-mel spectrograms]({png_name})", ""]
    if report.get("bundle"):
        lines += [f"Signed bundle: `{report['bundle']}` (base pack `{report['base']['pack_id']}`, compatibility "
                  f"`{report['base']['compatibility'][:16]}…`).", ""]
    return "\n".join(lines)


def to_json(report: Mapping[str, Any]) -> str:
    """JSON text of the report (numpy values made plain, non-finite numbers as null)."""

    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if not k.startswith("_")}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, (np.floating, float)):
            return float(v) if math.isfinite(float(v)) else None
        if isinstance(v, np.integer):
            return int(v)
        if isinstance(v, Path):
            return str(v)
        return v

    return json.dumps(clean(dict(report)), indent=2, ensure_ascii=False) + "\n"



# -- the whole job ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Consent:
    """Who agreed to the voice being made (required for a signed bundle)."""

    given_by: str
    date: str
    """``YYYY-MM-DD``."""
    statement: str


@dataclass(frozen=True)
class CloneJob:
    """Everything one clone run needs; the command line fills it in."""

    recordings: Path
    acoustic: Path
    vocoder: Path
    aligner: Path
    out: Path
    voice_id: str
    name: str
    base_pack: Path | None = None
    """The pack the adapter is for: its graphs fix the adapter's shape and its hash goes into the bundle."""
    language: str = "en-US"
    consent: Consent | None = None
    key: Path | None = None
    """Private signing key: a signed ``<voice_id>.mynavoice`` is written too."""
    transcribe: bool = False
    """Whisper tiny.en for recordings without a transcript (otherwise they are an error)."""
    fit: FitSettings = FitSettings()
    report: ReportSettings | None = ReportSettings()
    """None: no synthesis and no metrics (adapter and training figures only)."""
    base_speaker: str | None = None
    """Base voice for the baseline (default: the pack's default voice, else the table's first row)."""
    threads: int = 1
    progress: bool = True
    created: str | None = None


def _say(line: str) -> None:
    print(line, flush=True)


def _pack_rows(pack: Any, table: np.ndarray, names: Sequence[str]) -> dict[str, str]:
    """Pack voice id → acoustic speaker name, matching adapters to table rows; CloneError when a voice has no row."""
    out = {}
    for voice_id, arrays in pack.adapters.items():
        row = np.asarray(arrays.get("speaker"), np.float64).reshape(-1)
        hits = [i for i in range(table.shape[0]) if row.shape == table[i].shape and np.allclose(row, table[i], atol=1e-5)]
        if not hits:
            raise CloneError(f"base pack voice {voice_id!r} is no row of the acoustic checkpoint's speaker table: "
                             "the pack was built from another model, so an adapter fitted here would not fit it")
        out[voice_id] = names[hits[0]]
    return out


def _device_renderer(pack_root: Path, tier: str, adapter: Path, threads: int) -> DeviceRender:
    """The pack's default voice speaking with ``adapter`` through the engine (evaluate.py's renderer)."""
    import evaluate  # tools/evaluate.py: one way of driving the device runtime for every measurement

    from myna.voices import VoicePack

    default = VoicePack.load(pack_root).manifest.default_voice
    return evaluate.myna_renderer(default, tier, threads, [pack_root], adapter)


def clone_voice(job: CloneJob) -> dict[str, Any]:
    """Run the whole clone and write its files under ``job.out``; return the report (also written as JSON)."""
    from myna.bundles import VOICE_ID_PATTERN
    from tqdm import tqdm

    from . import aligner as aligner_mod
    from .acoustic import count_params, load_checkpoint
    from .bundle import adapter_bytes, utc_now
    from .export_vocoder import load_checkpoint as load_vocoder

    t_start = time.time()
    if not VOICE_ID_PATTERN.fullmatch(job.voice_id):
        raise CloneError(f"voice id {job.voice_id!r}: lowercase letters, digits and inner hyphens, at most 64")
    if job.fit.rhythm not in ("base", "clone"):
        raise CloneError(f"unknown rhythm {job.fit.rhythm!r} (base, clone)")
    if job.fit.pitch not in ("match", "base"):
        raise CloneError(f"unknown pitch {job.fit.pitch!r} (match, base)")
    if job.key is not None and (job.base_pack is None or job.consent is None):
        raise CloneError("a signed bundle needs --base-pack and the speaker's consent (--consent-by, --consent-date, --consent-statement)")
    timings: dict[str, float] = {}
    torch.set_num_threads(job.threads)

    # Base models, and the pack they must belong to (checked before any slow work).
    t = time.time()
    model, names, _ = load_checkpoint(job.acoustic)
    table = speaker_table(model)
    aligner = aligner_mod.load_model(job.aligner)
    vocoder, vocoder_table, vocoder_names = load_vocoder(job.vocoder)
    pack = None
    pack_voices: dict[str, str] = {}
    if job.base_pack is not None:
        from myna.voices import VoicePack, adapter_inputs

        pack = VoicePack.load(job.base_pack)
        wanted = adapter_inputs(pack.manifest)
        if wanted != {"speaker": (1, table.shape[1])}:
            raise CloneError(f"base pack {job.base_pack} wants adapter inputs {wanted}; this tool fits speaker [1, {table.shape[1]}]")
        pack_voices = _pack_rows(pack, table, names)
    base_speaker = job.base_speaker or (pack_voices.get(pack.manifest.default_voice) if pack else None) or names[0]
    if base_speaker not in names:
        raise CloneError(f"base speaker {base_speaker!r} is not in the acoustic model ({', '.join(names)})")
    timings["load_models"] = time.time() - t

    # Recordings → clips.
    t = time.time()
    files = find_audio(job.recordings)
    texts = read_transcripts(job.recordings)
    missing = [p for p in files if p.stem not in texts]
    if missing and not job.transcribe:
        raise CloneError(f"{len(missing)} of {len(files)} recording(s) have no transcript (first: {missing[0].name}); "
                         "put <name>.txt beside each file, or a metadata.csv / transcripts.tsv, or pass --transcribe "
                         "to transcribe them with Whisper tiny.en")
    frontend = TextFrontend()
    recordings = [read_recording(p, texts.get(p.stem)) for p in tqdm(files, desc="reading", unit="file", disable=not job.progress)]
    transcribed: list[str] = []
    units: list[Recording] = []
    for rec in recordings:
        if rec.text is not None:
            if rec.audio.size > MAX_ALIGNED_SECONDS * AUDIO.sample_rate:
                raise CloneError(f"{rec.path.name}: {rec.audio.size / AUDIO.sample_rate:.0f} s with one transcript; split "
                                 f"recordings with transcripts into files under {MAX_ALIGNED_SECONDS:.0f} s, or drop the "
                                 "transcript and pass --transcribe")
            units.append(rec)
            continue
        pieces = silence_cuts(rec.audio, AUDIO.sample_rate)
        for k, piece in enumerate(pieces):
            name = rec.name if len(pieces) == 1 else f"{rec.name}-{k + 1:02d}"
            text = metrics.transcribe(piece, AUDIO.sample_rate, threads=job.threads)
            units.append(Recording(name, rec.path, text, piece, rec.quality))
            transcribed.append(name)
    notes: list[str] = []
    clips: list[Clip] = []
    for rec in tqdm(units, desc="aligning", unit="clip", disable=not job.progress):
        if not rec.text:
            notes.append(f"{rec.path.name}: empty transcript, left out")
            continue
        words, ids = frontend(rec.text, rec.path.name)
        clip = make_clip(rec.name, " ".join(words), ids, rec.audio, native_band(rec.quality.native_rate))
        try:
            clip.durations = align(aligner, clip)
        except ValueError:
            notes.append(f"{rec.path.name}: {clip.seconds:.1f} s is too short for its {ids.size} phonemes; left out")
            continue
        clips.extend(split_long(clip, words, aligner))
    timings["prepare"] = time.time() - t
    job.out.mkdir(parents=True, exist_ok=True)
    if texts or transcribed:
        with (job.out / "transcripts.tsv").open("w", encoding="utf-8") as fh:
            for rec in units:
                where = rec.path.name if rec.name == rec.path.stem else f"{rec.path.name}#{rec.name}"
                fh.write(f"{where}\t{rec.text or ''}\t{'whisper' if rec.name in transcribed else 'given'}\n")
    seconds = float(sum(c.seconds for c in clips))
    warn_lines = quality_warnings(recordings, seconds) + notes
    for line in warn_lines:
        _say(f"warning: {line}")
    train, held = holdout_split(clips)
    _say(f"{len(recordings)} recording(s) → {len(clips)} clips, {seconds:.1f} s; fitting on {len(train)}, holding out {len(held)}")
    narrow = [c.band_hz for c in clips if c.band_hz < AUDIO.fmax]
    if narrow:
        _say(f"{len(narrow)} clip(s) carry sound only up to {min(narrow) / 1000:.1f}–{max(narrow) / 1000:.1f} kHz: "
             "the fit leaves out the mel bins above that")

    # Fit.
    fit = fit_speaker(model, names, train, held, job.fit, progress=job.progress)
    timings["fit"] = fit.seconds
    _say(f"speaker fitted from {fit.init}: held-out total loss {fit.initial_valid['total']:.4f} → {fit.best_valid['total']:.4f}, "
         f"mel {fit.initial_valid['mel']:.4f} → {fit.best_valid['mel']:.4f} "
         f"(step {fit.best_step} of {fit.steps}, {fit.stopped}, {fit.seconds:.1f} s)")
    acoustic_params = count_params(model) - model.speakers.weight.numel() + table.size  # the base model's own count
    adapter = {"speaker": fit.speaker.reshape(1, -1).astype(np.float32)}
    timbre = None
    pitch_match: dict[str, float] | None = None
    if job.fit.rhythm == "base":
        base_row = table[names.index(base_speaker)].astype(np.float32)
        left = replace(job.fit, max_minutes=max(0.5, job.fit.max_minutes - fit.seconds / 60))  # one time budget for both stages
        timbre = fit_timbre(model, table, base_row, fit.speaker, train, held, left, progress=job.progress)
        timings["fit_timbre"] = timbre.seconds
        _say(f"timbre fitted with the encoder hearing {base_speaker}: held-out mel {timbre.initial_valid['mel']:.4f} → "
             f"{timbre.best_valid['mel']:.4f} (step {timbre.best_step} of {timbre.steps}, {timbre.stopped}, {timbre.seconds:.1f} s)")
        adapter |= {"encoder.speaker": base_row.reshape(1, -1), "decoder.speaker": timbre.speaker.reshape(1, -1)}
        if job.fit.pitch == "match":
            matched = match_pitch(model, base_row, clips)
            if matched is None:
                warn_lines.append(f"too little voiced speech to match the pitch level; the clone speaks at {base_speaker}'s")
                _say(f"warning: {warn_lines[-1]}")
            else:
                pitch_match = {"scale": matched[0], "recordings_hz": matched[1]}
                adapter["pitch_scale"] = np.array([matched[0]], np.float32)
                _say(f"pitch: the recordings average {matched[1]:.0f} Hz; the clone speaks at {matched[0]:.3f} × "
                     f"{base_speaker}'s predicted pitch")
    if not all(np.all(np.isfinite(a)) for a in adapter.values()):
        raise CloneError("a fitted speaker vector is not finite; the recordings or the base model are unusable")
    adapter_path = job.out / f"{job.voice_id}.npz"
    adapter_path.write_bytes(adapter_bytes(adapter))
    vocoder_params = sum(p.numel() for p in vocoder.parameters())
    dim = int(adapter["speaker"].size)
    params = int(sum(a.size for a in adapter.values()))

    report: dict[str, Any] = {
        "voice_id": job.voice_id, "name": job.name, "created": job.created or utc_now(), "tool": f"{TOOL} {VERSION}",
        "recordings_dir": str(job.recordings),
        "base": {"acoustic": str(job.acoustic), "vocoder": str(job.vocoder), "aligner": str(job.aligner),
                 "pack": str(job.base_pack) if job.base_pack else None,
                 "pack_id": pack.manifest.pack_id if pack else None,
                 "compatibility": pack.manifest.compatibility_hash() if pack else None,
                 "speakers": list(names), "baseline_speaker": base_speaker},
        "data": {"recordings": len(recordings), "clips": len(clips), "seconds": seconds, "train_clips": len(train),
                 "held_out_clips": len(held), "transcribed": transcribed,
                 "files": [{"file": r.path.name, **asdict(r.quality)} for r in recordings],
                 "held_out": [c.name for c in held],
                 "band_hz": {c.name: c.band_hz for c in clips}},
        "warnings": warn_lines,
        "adapter": {"file": adapter_path.name, "dim": dim, "params": params, "acoustic_params": int(acoustic_params),
                    "tensors": {k: list(a.shape) for k, a in adapter.items()}, "rhythm": job.fit.rhythm,
                    "vocoder_params": int(vocoder_params), "fraction_of_acoustic": params / acoustic_params,
                    "fraction_of_base": params / (acoustic_params + vocoder_params), "norm": float(np.linalg.norm(fit.speaker)),
                    "table_norm_mean": float(np.linalg.norm(table, axis=1).mean())},
        "fit": {"settings": asdict(job.fit), **{k: v for k, v in vars(fit).items() if k != "speaker"}},
        "timbre": None if timbre is None else {k: v for k, v in vars(timbre).items() if k != "speaker"},
        "pitch": pitch_match,
        "timings_s": timings,
    }

    # Report.
    png = None
    if job.report is not None:
        t = time.time()
        voice = FloatVoice(model, names, vocoder, vocoder_table, vocoder_names, table)
        report["base"]["vocoder_map_residual"] = voice.map_residual
        device = None
        if pack is not None and job.report.eval_sentences and job.report.device:
            if model.cfg.tier in pack.manifest.tiers:
                device = _device_renderer(pack.root, model.cfg.tier, adapter_path, job.threads)
            else:
                warn_lines.append(f"no device-graph figures: base pack {pack.manifest.pack_id} has no {model.cfg.tier} tier")
        ev = evaluate_clone(voice, adapter, {"speaker": table[names.index(base_speaker)]}, base_speaker, held, clips, frontend,
                            job.report, job.out / f"{job.voice_id}-wavs", progress=job.progress, device=device)
        if device is not None:
            ev["device"] = f"pack {pack.manifest.pack_id}, tier {model.cfg.tier}, {pack.manifest.tiers[model.cfg.tier].graphs['decoder'].quantization}"
        rows = ev.pop("_audio")
        if rows:
            png = job.out / f"{job.voice_id}-spectrograms.png"
            plot_spectrograms(png, rows[0], f"{job.voice_id}: held-out clip {rows[0]['name']} — target, clone, base voice "
                                            f"{base_speaker} (float synthesis)")
        report["evaluation"] = ev
        timings["report"] = time.time() - t

    # Bundle.
    if job.key is not None and pack is not None and job.consent is not None:
        from myna.bundles import Consent as BundleConsent
        from myna.bundles import Provenance

        from .bundle import make_bundle
        from .signing import load_private

        data = make_bundle(adapter=adapter, base_pack=pack, voice_id=job.voice_id, name=job.name, language=job.language,
                           consent=BundleConsent(job.consent.given_by, job.consent.date, job.consent.statement),
                           provenance=Provenance(f"{TOOL} {VERSION}", len(recordings), round(seconds, 2),
                                                 f"held-out loss {fit.best_valid['total']:.4f}"),
                           key=load_private(job.key), created=report["created"])
        bundle_path = job.out / f"{job.voice_id}.mynavoice"
        tmp = bundle_path.with_name(bundle_path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(bundle_path)
        report["bundle"] = bundle_path.name
    timings["total"] = time.time() - t_start
    (job.out / f"{job.voice_id}-report.json").write_text(to_json(report), encoding="utf-8")
    (job.out / f"{job.voice_id}-report.md").write_text(markdown(report, png.name if png else None), encoding="utf-8")
    return report
