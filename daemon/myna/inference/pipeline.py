"""The Synthesizer: one PhonemeChunk → encoder → length regulation → decoder/vocoder chunks → audio blocks.

Flow per chunk (see acoustic.py and vocoder.py for the graph contract):

1. ``render()`` runs the encoder once and the numpy length regulation, so the chunk's length and each
   word's sample offset are known before any audio exists.
2. ``ChunkAudio.blocks()`` then runs the decoder one frame chunk ahead of the vocoder (the vocoder's
   right context comes from the next decoder run) and yields each chunk's finished samples; the first
   block is ready after two decoder runs and one vocoder run.

The same chunk, speaker, rate and pitch always give bit-identical samples.  A Synthesizer is not
thread-safe and its buffers are shared, so only one ChunkAudio may be iterated at a time.
"""

from __future__ import annotations

import logging
import math
from typing import Iterator, Mapping

import numpy as np

from .. import errors
from ..text.units import PhonemeChunk
from ..voices import GRAPH_ROLES, VoicePack, adapter_value, pitch_scale
from .acoustic import Alignment, ChunkTooLong, Decoder, Encoder
from .runtime import Backend, Graph
from .vocoder import Vocoder

_LOGGER = logging.getLogger(__name__)

__all__ = ["ChunkAudio", "ChunkTooLong", "Synthesizer"]


class ChunkAudio:
    """The audio of one rendered chunk: word offsets and length up front, samples streamed by ``blocks()``."""

    def __init__(
        self, synth: "Synthesizer", alignment: Alignment, word_samples: tuple[int, ...], speaker: Mapping[str, np.ndarray]
    ) -> None:
        self._synth = synth
        self._alignment = alignment
        self._speaker = speaker
        self.word_samples = word_samples
        """Sample offset within this chunk where each word of ``chunk.words`` begins (non-decreasing)."""
        self.total_samples = alignment.total_frames * synth.hop_length
        """Number of samples ``blocks()`` yields in all."""

    def blocks(self) -> Iterator[np.ndarray]:
        """Yield float32 blocks in [-1, 1] as soon as each is final.

        Each block is a view of a preallocated buffer that stays valid only until the next block is
        requested: copy it (or write it to the sink) before advancing.  Iterating another ChunkAudio of
        the same Synthesizer in between raises MynaError.
        """
        return self._synth._stream(self._alignment, self._speaker)


class Synthesizer:
    """The three graphs of one tier of a pack, built once, with preallocated buffers."""

    def __init__(self, pack: VoicePack, tier: str, num_threads: int = 1, backend: Backend | None = None) -> None:
        """Load and check ``tier``'s encoder, decoder and vocoder graphs."""
        if tier not in pack.manifest.tiers:
            raise errors.VoicePackError(f"pack {pack.manifest.pack_id!r} has no tier {tier!r}")
        spec = pack.manifest.tiers[tier]
        graphs = {role: Graph(pack.graph_path(tier, role), spec.graphs[role], num_threads, backend) for role in GRAPH_ROLES}
        self._graphs = graphs
        self.tier = tier
        """The tier in use."""
        self.sample_rate = pack.manifest.audio.sample_rate
        """Samples per second of the output."""
        self.hop_length = pack.manifest.audio.hop_length
        """Samples per frame."""
        self._encoder = Encoder(graphs["encoder"])
        self._decoder = Decoder(graphs["decoder"], spec.overlap)
        self._vocoder = Vocoder(graphs["vocoder"], pack.manifest.audio, spec.overlap)
        self.max_phonemes = self._encoder.bucket
        """Largest PhonemeChunk (ids) this tier accepts: the phoneme bucket."""
        v = self._decoder.hop_frames
        mels = int(graphs["decoder"].outputs["mel"].shape[2])
        # Mel frames [(k-1)·V, (k+2)·V) around vocoder chunk k: previous, current and next decoder runs.
        self._mel_history = np.zeros((3 * v, mels), np.float32)
        self._mel_floor = np.float32(pack.manifest.audio.mel_floor)
        self._stream_id = 0
        _LOGGER.info(
            "synthesizer %s/%s: bucket %d, %d-frame chunks, XNNPACK partitions %s",
            pack.manifest.pack_id, tier, self.max_phonemes, spec.frame_chunk,
            {role: g.delegate_partitions() for role, g in graphs.items()},
        )

    def delegate_partitions(self) -> dict[str, int]:
        """Delegate (XNNPACK) partitions per graph role."""
        return {role: g.delegate_partitions() for role, g in self._graphs.items()}

    def _set_speaker(self, speaker: Mapping[str, np.ndarray]) -> None:
        for role, graph in self._graphs.items():
            for name, buffer in graph.inputs.items():
                if name in ("phoneme_ids", "frames", "frame_pitch", "mel"):
                    continue
                value = adapter_value(speaker, role, name)
                if value is None or np.shape(value) != buffer.shape:
                    raise errors.VoicePackError(
                        f"adapter lacks {name!r} of shape {list(buffer.shape)} (got {None if value is None else list(np.shape(value))})"
                    )
                np.copyto(buffer, value)

    def render(self, chunk: PhonemeChunk, speaker: Mapping[str, np.ndarray], rate: float = 1.0, pitch: float = 1.0) -> ChunkAudio:
        """Encode ``chunk`` now and return its ChunkAudio; raise ChunkTooLong over the bucket.

        ``pitch`` is the request's factor, on top of the voice's own ``pitch_scale`` (``voices.VOICE_TENSORS``)."""
        if not (math.isfinite(rate) and rate > 0 and math.isfinite(pitch) and pitch > 0):
            raise errors.InvalidOption(f"rate and pitch must be positive numbers, got {rate!r}, {pitch!r}")
        if len(chunk.ids) > self.max_phonemes:
            raise ChunkTooLong(f"a chunk of {len(chunk.ids)} phonemes exceeds the voice's bucket of {self.max_phonemes}")
        self._set_speaker(speaker)
        alignment = self._encoder.run(chunk.ids, rate, pitch * pitch_scale(speaker))
        return ChunkAudio(self, alignment, self._word_samples(chunk, alignment), speaker)

    def _word_samples(self, chunk: PhonemeChunk, alignment: Alignment) -> tuple[int, ...]:
        starts = alignment.starts()
        total = alignment.total_frames
        word_of = np.asarray(chunk.word_of, dtype=np.int64)
        offsets = []
        for index in range(len(chunk.words)):
            # A word with no ids of its own (rare) starts where the next word's ids start.
            positions = np.flatnonzero(word_of >= index) if not np.any(word_of == index) else np.flatnonzero(word_of == index)
            frame = int(starts[positions[0]]) if positions.size else total
            offsets.append(frame * self.hop_length)
        return tuple(np.maximum.accumulate(np.asarray(offsets, dtype=np.int64)).tolist()) if offsets else ()

    def _stream(self, alignment: Alignment, speaker: Mapping[str, np.ndarray]) -> Iterator[np.ndarray]:
        total = alignment.total_frames
        if total == 0:
            return
        self._stream_id += 1
        mine = self._stream_id
        self._set_speaker(speaker)
        v, mel = self._decoder.hop_frames, self._mel_history
        o = self._decoder.overlap
        chunks = -(-total // v)
        mel.fill(self._mel_floor)
        self._vocoder.start(total)
        mel[v : 2 * v] = self._decoder.run(alignment, 0)
        for k in range(chunks):
            if self._stream_id != mine:
                raise errors.MynaError("another chunk was rendered while this one was streaming")
            if k + 1 < chunks:
                mel[2 * v :] = self._decoder.run(alignment, (k + 1) * v)
            else:
                mel[2 * v :] = self._mel_floor
            # The vocoder sees silence (the mel floor) past the utterance's end and before its start.
            past_end = max(0, total - (k - 1) * v)
            mel[past_end:] = self._mel_floor
            block = self._vocoder.run(mel[v - o : 2 * v + o])
            mel[: 2 * v] = mel[v:]
            if block.size:
                yield block
