"""Neural grapheme-to-phoneme for words the lexicon lacks: one fixed-shape INT8 TFLite call per word.

The model (``models/g2p-en``, trained on CMUdict by ``tools/train_g2p.py``) reads up to ``max_letters``
letter ids and emits CTC logits over ``blank + PHONEMES`` at ``upsample`` positions per letter.  Decoding
happens here in numpy: with a ``decoder`` section in the manifest, a CTC beam search with a phoneme n-gram
(:mod:`.g2p_lm`) whose few best candidates a small reverse model (phonemes → letters) re-ranks; without
one, greedy CTC with one stress constraint (:class:`CtcDecoder`).  Runtime imports: numpy and the TFLite
shim only, never torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import errors
from ..datadirs import shipped_dir
from ..inference.runtime import Graph
from ..voices import GraphSpec
from . import phonemes
from .g2p_lm import BeamConfig, BeamDecoder, PhonemeLM, log_softmax

_LOGGER = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
FORMAT = "myna-g2p"
FORMAT_VERSION = 1
MAX_INPUT_CHARS = 256
"""Longer input is cut here: a "word" this long is not a word, and each piece costs a graph call."""


class CtcDecoder:
    """Greedy CTC decoding (collapse repeats, drop blanks) that repairs the primary stress.

    Frame-wise argmax decides stress per vowel independently, so about one word in twenty comes out
    with no primary stress or with two; English words carry exactly one.  When the greedy path has a
    vowel count of primary stresses other than one, the vowel whose best frame prefers stress 1 most
    (log-prob of ``X1`` minus the better of ``X0``/``X2``) becomes the primary and every other vowel
    takes its better non-primary stress.  The phoneme identities are never changed.
    """

    def __init__(self, symbols: tuple[str, ...], blank: int = 0) -> None:
        """``symbols[k]`` names output ``k`` (``symbols[blank]`` is unused)."""
        self.symbols = symbols
        self.blank = blank
        index = {s: k for k, s in enumerate(symbols)}
        # For each stressed vowel id: the ids of its stress 0, 1, 2 variants (vowels lacking one are skipped).
        self._stress: dict[int, tuple[int, int, int]] = {}
        for k, s in enumerate(symbols):
            if k != blank and s[-1:].isdigit():
                ids = tuple(index.get(s[:-1] + d, -1) for d in "012")
                if -1 not in ids:
                    self._stress[k] = ids  # type: ignore[assignment]

    def decode(self, logits: np.ndarray) -> tuple[str, ...]:
        """``logits`` [steps, n_out] (raw or log-softmax) → symbols."""
        best = np.argmax(logits, axis=-1).tolist()
        segments: list[list[int]] = []  # [id, first frame, end frame]
        prev = self.blank
        for t, k in enumerate(best):
            if k != self.blank:
                if k == prev:
                    segments[-1][2] = t + 1
                else:
                    segments.append([k, t, t + 1])
            prev = k
        ids = [seg[0] for seg in segments]
        vowels = [i for i, k in enumerate(ids) if k in self._stress]
        primaries = sum(ids[i] == self._stress[ids[i]][1] for i in vowels)
        if vowels and primaries != 1:
            prefs = []
            for i in vowels:
                k, first, end = segments[i]
                logp = log_softmax(logits[first:end])
                prefs.append(logp[:, list(self._stress[k])].max(0))
            chosen = int(np.argmax([p[1] - max(p[0], p[2]) for p in prefs]))
            for n, i in enumerate(vowels):
                variants, p = self._stress[ids[i]], prefs[n]
                ids[i] = variants[1] if n == chosen else variants[0] if p[0] >= p[2] else variants[2]
        return tuple(self.symbols[k] for k in ids)


@dataclass(frozen=True)
class Rescorer:
    """The reverse model that re-ranks beam candidates by ``log P(letters | phonemes)``."""

    graph: GraphSpec
    """Input ``phonemes`` int32 [1, max_phonemes] (G2P output ids, 0 pads) → ``logits`` [1, 1, steps, 1 + letters]."""
    max_phonemes: int
    upsample: int
    weight: float
    """Score = beam score + weight × log P(letters | candidate)."""
    candidates: int
    """How many of the beam's best are re-ranked."""


@dataclass(frozen=True)
class DecoderSpec:
    """``manifest.decoder``: beam search settings, the LM file and the optional rescorer."""

    beam: BeamConfig
    lm_file: str
    lm_sha256: str
    rescorer: Rescorer | None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str) -> DecoderSpec:
        """Parse; KeyError/TypeError/ValueError propagate to the manifest parser."""
        if raw["kind"] != "beam":
            raise ValueError(f"decoder kind {raw['kind']!r}")
        beam = BeamConfig(int(raw["beam"]), float(raw["lm_weight"]), float(raw["insertion_bonus"]), float(raw["prune"]))
        if beam.beam < 1:
            raise ValueError("beam < 1")
        rescorer = None
        if raw.get("rescorer"):
            r = raw["rescorer"]
            rescorer = Rescorer(GraphSpec.from_dict(r["graph"], f"{where}.rescorer.graph"), int(r["max_phonemes"]),
                                int(r["upsample"]), float(r["weight"]), int(r["candidates"]))
            inp, out = rescorer.graph.input("phonemes"), rescorer.graph.output("logits")
            if inp is None or inp.shape != (1, rescorer.max_phonemes) or inp.dtype != "int32" or out is None \
                    or out.shape[:3] != (1, 1, rescorer.max_phonemes * rescorer.upsample):
                raise ValueError("rescorer graph I/O does not match max_phonemes/upsample")
        return cls(beam, str(raw["lm"]["file"]), str(raw["lm"]["sha256"]), rescorer)


@dataclass(frozen=True)
class G2PManifest:
    """What ``models/g2p-en/manifest.json`` promises about the graph."""

    letters: str
    """Letter inventory; id of a letter = its index + 1, 0 pads."""
    max_letters: int
    """Letters per graph call (fixed input shape)."""
    upsample: int
    """Output positions per letter."""
    blank: int
    """CTC blank id (0)."""
    outputs: tuple[str, ...]
    """Symbol of output id k is ``outputs[k - 1]`` (k ≠ blank); all from ``phonemes.PHONEMES``."""
    graph: GraphSpec
    """The TFLite file, its SHA-256 and fixed I/O."""
    decoder: DecoderSpec | None = None
    """Beam search + LM (+ rescorer); None = greedy CTC."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str = MANIFEST_NAME) -> G2PManifest:
        """Parse and check; VoicePackError on anything the runtime cannot honour."""
        try:
            if raw.get("format") != FORMAT or raw.get("format_version") != FORMAT_VERSION:
                raise errors.VoicePackError(f"{where}: not a {FORMAT} v{FORMAT_VERSION} manifest")
            inv = raw["inventory"]
            if (inv["name"], inv["version"]) != (phonemes.ARPABET_V1.name, phonemes.ARPABET_V1.version):
                raise errors.VoicePackError(f"{where}: inventory {inv} is not {phonemes.ARPABET_V1.name} v1")
            outputs = tuple(str(s) for s in raw["outputs"])
            unknown = sorted(set(outputs) - set(phonemes.PHONEMES))
            if unknown:
                raise errors.VoicePackError(f"{where}: output symbols outside the inventory: {unknown}")
            decoder = DecoderSpec.from_dict(raw["decoder"], f"{where}.decoder") if raw.get("decoder") else None
            manifest = cls(str(raw["letters"]), int(raw["max_letters"]), int(raw["upsample"]), int(raw["blank"]),
                           outputs, GraphSpec.from_dict(raw["graph"], f"{where}.graph"), decoder)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise errors.VoicePackError(f"{where}: malformed G2P manifest ({exc!r})") from None
        letters_in = manifest.graph.input("letters")
        logits = manifest.graph.output("logits")
        steps = manifest.max_letters * manifest.upsample
        if letters_in is None or letters_in.shape != (1, manifest.max_letters) or letters_in.dtype != "int32":
            raise errors.VoicePackError(f"{where}: graph input 'letters' must be int32 [1, {manifest.max_letters}]")
        if logits is None or logits.shape != (1, 1, steps, len(outputs) + 1):
            raise errors.VoicePackError(f"{where}: graph output 'logits' must be [1, 1, {steps}, {len(outputs) + 1}]")
        return manifest


def ctc_log_likelihood(logits: np.ndarray, target: list[int], blank: int = 0) -> float:
    """log P(target | logits) under CTC (sum over alignments); -1e4 when no alignment fits."""
    lp = log_softmax(logits)
    ext = np.full(2 * len(target) + 1, blank, np.int64)
    ext[1::2] = target
    n = len(ext)
    # A symbol may be reached from two states back when it is not a blank and differs from that state's.
    skip = np.zeros(n, bool)
    skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
    alpha = np.full(n, -np.inf)
    alpha[0] = lp[0, ext[0]]
    if n > 1:
        alpha[1] = lp[0, ext[1]]
    for t in range(1, len(lp)):
        prev = alpha.copy()
        shifted1 = np.concatenate(([-np.inf], prev[:-1]))
        shifted2 = np.where(skip, np.concatenate(([-np.inf, -np.inf], prev[:-2])), -np.inf)
        alpha = np.logaddexp(np.logaddexp(prev, shifted1), shifted2) + lp[t, ext]
    total = np.logaddexp(alpha[-1], alpha[-2]) if n > 1 else alpha[-1]
    return float(total) if np.isfinite(total) else -1e4


def _checked(model_dir: Path, file: str, sha256: str) -> Path:
    """``model_dir / file`` after its SHA-256 matched the manifest; VoicePackError otherwise."""
    path = model_dir / Path(file).name
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise errors.VoicePackError(f"{model_dir}: cannot read {path.name}: {exc}") from None
    if digest != sha256:
        raise errors.VoicePackError(f"{path.name}: sha256 is {digest}, manifest says {sha256}")
    return path


def default_model_dir() -> Path:
    """The shipped English G2P model directory (``models/g2p-en``)."""
    root = shipped_dir("models")
    if root is None:
        raise errors.VoicePackError("no shipped models directory found")
    return root / "g2p-en"


class NeuralG2P:
    """Spell a word to ARPAbet with the INT8 G2P graph; one instance per worker thread."""

    def __init__(self, model_dir: Path, num_threads: int = 1) -> None:
        """Read and validate the manifest, check the graph's SHA-256, and build the Graph once."""
        model_dir = Path(model_dir)
        try:
            raw = json.loads((model_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise errors.VoicePackError(f"{model_dir}: cannot read {MANIFEST_NAME}: {exc}") from None
        self.manifest = G2PManifest.from_dict(raw)
        path = _checked(model_dir, self.manifest.graph.file, self.manifest.graph.sha256)
        self.graph = Graph(path, self.manifest.graph, num_threads=num_threads)
        self.max_letters: int = self.manifest.max_letters
        self._ids = {c: i + 1 for i, c in enumerate(self.manifest.letters)}
        self._symbols = ("",) + self.manifest.outputs
        self._letters = self.graph.inputs["letters"]
        self._logits = self.graph.outputs["logits"]
        self._decoder = CtcDecoder(self._symbols, self.manifest.blank)
        self._beam: BeamDecoder | None = None
        self._rescorer: Graph | None = None
        spec = self.manifest.decoder
        if spec is not None:
            lm = PhonemeLM(_checked(model_dir, spec.lm_file, spec.lm_sha256))
            if lm.vocab != len(self._symbols):
                raise errors.VoicePackError(f"{spec.lm_file}: vocabulary {lm.vocab}, the graph has {len(self._symbols)}")
            primary = {k for k, sym in enumerate(self._symbols) if sym.endswith("1")}
            vowels = {k for k, sym in enumerate(self._symbols) if sym[-1:].isdigit()}
            self._beam = BeamDecoder(lm, primary, vowels, spec.beam, self.manifest.blank)
            if spec.rescorer is not None:
                r = spec.rescorer
                self._rescorer = Graph(_checked(model_dir, r.graph.file, r.graph.sha256), r.graph, num_threads=num_threads)

    def pieces(self, word: str) -> list[str]:
        """Split ``word`` into graph-sized letter runs.

        Accents are stripped (NFKD), case folded; any character outside the letter inventory separates
        pieces ("x-ray" → "x", "ray").  A piece longer than ``max_letters`` is cut into
        ``ceil(n / max_letters)`` near-equal parts whose pronunciations are concatenated: a 30-letter
        compound reads as two 15-letter halves, which keeps each half's context balanced.
        """
        text = unicodedata.normalize("NFKD", word[:MAX_INPUT_CHARS]).lower()
        runs, current = [], []
        for ch in text:
            if ch in self._ids:
                current.append(ch)
            elif not unicodedata.combining(ch) and current:
                runs.append("".join(current)); current = []
        if current:
            runs.append("".join(current))
        out = []
        for run in runs:
            if not run.strip("'"):
                continue
            parts = math.ceil(len(run) / self.max_letters)
            size = math.ceil(len(run) / parts)
            out += [run[i : i + size] for i in range(0, len(run), size)]
        return out

    def predict(self, word: str) -> tuple[str, ...]:
        """ARPAbet symbols (stress on vowels) for ``word``; () for empty or letter-free input; never raises."""
        result: list[str] = []
        for piece in self.pieces(word):
            result += self._run(piece)
        return tuple(result)

    def _run(self, piece: str) -> list[str]:
        logits = self.logits(piece)
        if self._beam is None:
            return list(self._decoder.decode(logits))
        return list(self.symbols(self.rerank(piece, self.candidates(logits))[0][0]))

    def symbols(self, ids: tuple[int, ...]) -> tuple[str, ...]:
        """ARPAbet symbols of output ids."""
        return tuple(self._symbols[k] for k in ids)

    def candidates(self, logits: np.ndarray, beam: BeamConfig | None = None) -> list[tuple[tuple[int, ...], float]]:
        """The beam's candidates (output ids, score), best first; ``beam`` overrides the manifest's settings."""
        if self._beam is None:
            raise errors.VoicePackError("this G2P model has no beam decoder")
        decoder = self._beam if beam is None else self._beam.with_config(beam)
        return decoder.nbest(logits)

    def rerank(self, piece: str, candidates: list[tuple[tuple[int, ...], float]], weight: float | None = None,
               memo: dict[tuple[str, tuple[int, ...]], float] | None = None) -> list[tuple[tuple[int, ...], float]]:
        """The best ``rescorer.candidates`` re-ranked by score + weight × log P(letters | candidate), best first.

        ``weight`` overrides the manifest's; ``memo`` keeps reverse-model scores across calls (tuning).
        Without a rescorer, a weight of 0 or a single candidate the order is the beam's.
        """
        spec = self.manifest.decoder.rescorer if self.manifest.decoder else None
        weight = spec.weight if spec is not None and weight is None else weight
        if spec is None or not weight or len(candidates) < 2:
            return candidates
        letters = [self._ids[ch] for ch in piece]
        memo = {} if memo is None else memo
        scored = []
        for ids, score in candidates[: spec.candidates]:
            if (piece, ids) not in memo:
                memo[(piece, ids)] = self.reverse_log_likelihood(ids, letters)
            scored.append((ids, score + weight * memo[(piece, ids)]))
        return sorted(scored, key=lambda c: c[1], reverse=True)

    def logits(self, piece: str) -> np.ndarray:
        """The G2P graph's CTC logits [len(piece) × upsample, n_out] for one piece (a copy)."""
        self._letters.fill(0)
        self._letters[0, : len(piece)] = [self._ids[ch] for ch in piece]
        self.graph.run()
        return self._logits[0, 0, : len(piece) * self.manifest.upsample].copy()

    def reverse_log_likelihood(self, ids: tuple[int, ...], letters: list[int]) -> float:
        """log P(letters | output ids) from the reverse model; -1e6 for a candidate it cannot read."""
        spec = self.manifest.decoder.rescorer if self.manifest.decoder else None
        if spec is None or self._rescorer is None:
            raise errors.VoicePackError("this G2P model has no reverse model")
        if not ids or len(ids) > spec.max_phonemes:
            return -1e6
        inp, out = self._rescorer.inputs["phonemes"], self._rescorer.outputs["logits"]
        inp.fill(0)
        inp[0, : len(ids)] = ids
        self._rescorer.run()
        return ctc_log_likelihood(out[0, 0, : len(ids) * spec.upsample], letters)
