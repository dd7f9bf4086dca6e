"""Acoustic model: the encoder per phoneme chunk, numpy length regulation, the decoder per frame chunk.

Graph contract (fixed shapes; P = the tier's phoneme bucket, F = its frame chunk):

* encoder inputs ``phoneme_ids`` int32 [1, P] (ids of the pack's inventory, padded with id 0) and
  ``speaker`` float32 [1, S]; outputs ``hidden`` float32 [1, P, H], ``log_duration`` float32 [1, P]
  (natural log of frames per phoneme) and ``pitch`` float32 [1, P] (F0 in units of 100 Hz, linear,
  0 for unvoiced).  It runs once per PhonemeChunk.
* length regulation (numpy): ``durations = clip(rint(exp(log_duration) / rate), 0, MAX_FRAMES_PER_PHONEME)``
  frames per phoneme, 0 for padding; ``pitch`` is multiplied by the pitch factor; ``hidden`` rows are
  repeated into frames.
* decoder inputs ``frames`` float32 [1, F, H], ``frame_pitch`` float32 [1, F, 1], ``speaker``; output
  ``mel`` float32 [1, F, M].  It runs on windows of F frames that carry ``overlap`` context frames on
  each side (zeros beyond the utterance); only the middle ``F - 2*overlap`` mel frames are kept, so a
  receptive field within ``overlap`` gives exactly the same mel however the frames are chunked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .. import errors
from .runtime import Graph

_LOGGER = logging.getLogger(__name__)

# Cap on frames per phoneme (≈0.6 s at 22050/256) so a slow rate or a runaway prediction cannot
# make one chunk's audio unbounded.
MAX_FRAMES_PER_PHONEME = 50


class ChunkTooLong(errors.TextTooLong):
    """A PhonemeChunk holds more ids than the voice's phoneme bucket (e.g. one enormous word)."""


@dataclass(frozen=True)
class Alignment:
    """The encoder's result for one chunk, expanded to durations (arrays owned by this object)."""

    hidden: np.ndarray
    """[P, H] float32 hidden states per phoneme slot."""
    pitch: np.ndarray
    """[P] float32 pitch per phoneme slot, pitch factor applied."""
    durations: np.ndarray
    """[P] int64 frames per phoneme slot (0 for padding)."""
    ends: np.ndarray
    """[P] int64 cumulative durations: frame where each slot ends."""

    @property
    def total_frames(self) -> int:
        """Frames of the whole chunk."""
        return int(self.ends[-1]) if self.ends.size else 0

    def starts(self) -> np.ndarray:
        """[P] frame where each slot begins."""
        return self.ends - self.durations


class Encoder:
    """Runs the encoder graph on one padded phoneme chunk."""

    def __init__(self, graph: Graph) -> None:
        """Wrap a loaded encoder Graph."""
        self.graph = graph
        self.bucket = int(graph.inputs["phoneme_ids"].shape[1])

    def run(self, ids: tuple[int, ...], rate: float, pitch_factor: float) -> Alignment:
        """Encode ``ids`` (speaker inputs already set) and regulate lengths; raise ChunkTooLong."""
        if len(ids) > self.bucket:
            raise ChunkTooLong(f"a chunk of {len(ids)} phonemes exceeds the voice's bucket of {self.bucket}")
        id_buffer = self.graph.inputs["phoneme_ids"]
        id_buffer.fill(0)
        id_buffer[0, : len(ids)] = ids
        self.graph.run()
        out = self.graph.outputs
        frames = np.exp(out["log_duration"][0].astype(np.float64)) / rate
        durations = np.clip(np.rint(frames), 0, MAX_FRAMES_PER_PHONEME).astype(np.int64)
        durations[len(ids) :] = 0
        return Alignment(
            hidden=out["hidden"][0].copy(),
            pitch=(out["pitch"][0] * np.float32(pitch_factor)).astype(np.float32),
            durations=durations,
            ends=np.cumsum(durations),
        )


class Decoder:
    """Runs the decoder graph on frame windows of one Alignment."""

    def __init__(self, graph: Graph, overlap: int) -> None:
        """Wrap a loaded decoder Graph; ``overlap`` context frames on each side of a window."""
        self.graph = graph
        self.frame_chunk = int(graph.inputs["frames"].shape[1])
        self.overlap = overlap
        self.hop_frames = self.frame_chunk - 2 * overlap
        self._offsets = np.arange(self.frame_chunk, dtype=np.int64)

    def run(self, alignment: Alignment, first_frame: int) -> np.ndarray:
        """Return mel [hop_frames, M] for frames from ``first_frame``: a view valid until the next run."""
        window = self._offsets + (first_frame - self.overlap)
        total = alignment.total_frames
        valid = (window >= 0) & (window < total)
        slot = np.searchsorted(alignment.ends, window, side="right")
        np.minimum(slot, alignment.ends.size - 1, out=slot)
        frames = self.graph.inputs["frames"][0]
        np.take(alignment.hidden, slot, axis=0, out=frames)
        frames[~valid] = 0.0
        frame_pitch = self.graph.inputs["frame_pitch"][0, :, 0]
        np.take(alignment.pitch, slot, out=frame_pitch)
        frame_pitch[~valid] = 0.0
        self.graph.run()
        return self.graph.outputs["mel"][0, self.overlap : self.overlap + self.hop_frames]
