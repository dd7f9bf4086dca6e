"""The Synthesizer: determinism, streaming, word offsets and limits, on real INT8 TFLite graphs."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

from myna import errors
from myna.inference.pipeline import ChunkAudio, ChunkTooLong, Synthesizer
from myna.text.units import PhonemeChunk
from myna.voices import VoiceRegistry


def collect(audio: ChunkAudio) -> list[np.ndarray]:
    # Blocks are views valid until the next one is requested, so copy each.
    return [block.copy() for block in audio.blocks()]


def test_same_input_twice_gives_bit_identical_samples(tiny: Synthesizer, registry: VoiceRegistry, chunk_maker: Callable[..., PhonemeChunk]) -> None:
    chunk = chunk_maker(6)
    speaker = registry.get("placeholder").adapter
    first = np.concatenate(collect(tiny.render(chunk, speaker, 1.0, 1.0)))
    second = np.concatenate(collect(tiny.render(chunk, speaker, 1.0, 1.0)))
    assert first.tobytes() == second.tobytes()


def test_blocks_stream_and_add_up_to_total_samples(tiny: Synthesizer, registry: VoiceRegistry, chunk_maker: Callable[..., PhonemeChunk]) -> None:
    audio = tiny.render(chunk_maker(8), registry.get("placeholder").adapter)
    blocks = collect(audio)
    assert len(blocks) > 1, "the first block must come before the whole chunk is synthesized"
    assert sum(b.size for b in blocks) == audio.total_samples > 0
    assert all(b.dtype == np.float32 for b in blocks)
    samples = np.concatenate(blocks)
    assert np.all(np.abs(samples) <= 1.0) and np.any(samples != 0)


def test_word_samples_increase_and_fall_inside_the_chunk(tiny: Synthesizer, registry: VoiceRegistry, chunk_maker: Callable[..., PhonemeChunk]) -> None:
    chunk = chunk_maker(5)
    audio = tiny.render(chunk, registry.get("placeholder").adapter)
    assert len(audio.word_samples) == len(chunk.words)
    assert all(a < b for a, b in zip(audio.word_samples, audio.word_samples[1:]))
    assert 0 < audio.word_samples[0] and audio.word_samples[-1] < audio.total_samples
    assert all(s % tiny.hop_length == 0 for s in audio.word_samples)


def test_faster_rate_gives_shorter_audio(tiny: Synthesizer, registry: VoiceRegistry, chunk_maker: Callable[..., PhonemeChunk]) -> None:
    chunk, speaker = chunk_maker(6), registry.get("placeholder").adapter
    normal = tiny.render(chunk, speaker, 1.0).total_samples
    fast = tiny.render(chunk, speaker, 2.0).total_samples
    assert 0.4 * normal < fast < 0.6 * normal


def test_voices_differ_by_their_adapter(tiny: Synthesizer, registry: VoiceRegistry, chunk_maker: Callable[..., PhonemeChunk]) -> None:
    chunk = chunk_maker(4)
    a = np.concatenate(collect(tiny.render(chunk, registry.get("placeholder").adapter)))
    b = np.concatenate(collect(tiny.render(chunk, registry.get("placeholder-alt").adapter)))
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_a_per_graph_vector_overrides_the_shared_one_in_that_graph_only(
    tiny: Synthesizer, registry: VoiceRegistry, chunk_maker: Callable[..., PhonemeChunk]
) -> None:
    chunk = chunk_maker(4)
    a, b = registry.get("placeholder").adapter["speaker"], registry.get("placeholder-alt").adapter["speaker"]
    def render(adapter: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate(collect(tiny.render(chunk, adapter)))

    every_graph_b = render({"speaker": a, "encoder.speaker": b, "decoder.speaker": b, "vocoder.speaker": b})
    assert every_graph_b.tobytes() == render({"speaker": b}).tobytes()
    decoder_only = render({"speaker": a, "decoder.speaker": b})
    assert decoder_only.shape == render({"speaker": a}).shape  # the encoder (durations) still hears a
    assert not np.array_equal(decoder_only, render({"speaker": a})) and not np.array_equal(decoder_only, every_graph_b)


def test_a_voice_pitch_scale_multiplies_the_predicted_pitch_like_the_request_factor(
    tiny: Synthesizer, registry: VoiceRegistry, chunk_maker: Callable[..., PhonemeChunk]
) -> None:
    chunk, speaker = chunk_maker(5), registry.get("placeholder").adapter["speaker"]
    def render(adapter: dict[str, np.ndarray], pitch: float) -> bytes:
        return np.concatenate(collect(tiny.render(chunk, adapter, 1.0, pitch))).tobytes()

    scaled = render({"speaker": speaker, "pitch_scale": np.array([0.8], np.float32)}, 1.0)
    assert scaled == render({"speaker": speaker}, 0.8)
    assert scaled != render({"speaker": speaker}, 1.0)
    # The request's factor applies on top of the voice's own.
    assert render({"speaker": speaker, "pitch_scale": np.array([0.8], np.float32)}, 1.25) == render({"speaker": speaker}, 1.0)


def test_chunk_over_the_bucket_raises_chunk_too_long(tiny: Synthesizer, registry: VoiceRegistry) -> None:
    ids = (5,) * (tiny.max_phonemes + 1)
    chunk = PhonemeChunk(ids, (-1,) * len(ids), ())
    with pytest.raises(ChunkTooLong) as caught:
        tiny.render(chunk, registry.get("placeholder").adapter)
    assert isinstance(caught.value, errors.MynaError) and not isinstance(caught.value, ValueError)
    assert caught.value.code == "TextTooLong"


def test_a_full_bucket_is_accepted(tiny: Synthesizer, registry: VoiceRegistry) -> None:
    ids = (9,) * tiny.max_phonemes
    audio = tiny.render(PhonemeChunk(ids, (0,) * len(ids), ()), registry.get("placeholder").adapter)
    assert sum(b.size for b in audio.blocks()) == audio.total_samples


def test_small_tier_has_a_larger_bucket(registry: VoiceRegistry, tiny: Synthesizer, chunk_maker: Callable[..., PhonemeChunk]) -> None:
    small = Synthesizer(registry.get("placeholder").pack, "small", num_threads=1)
    assert small.max_phonemes > tiny.max_phonemes and small.sample_rate == tiny.sample_rate
    audio = small.render(chunk_maker(3), registry.get("placeholder").adapter)
    assert sum(b.size for b in audio.blocks()) == audio.total_samples


def test_interleaving_two_streams_is_refused(tiny: Synthesizer, registry: VoiceRegistry, chunk_maker: Callable[..., PhonemeChunk]) -> None:
    speaker = registry.get("placeholder").adapter
    first = tiny.render(chunk_maker(8), speaker).blocks()
    next(first)
    collect(tiny.render(chunk_maker(2), speaker))
    with pytest.raises(errors.MynaError, match="another chunk"):
        next(first)


def test_bad_rate_is_an_invalid_option(tiny: Synthesizer, registry: VoiceRegistry, chunk_maker: Callable[..., PhonemeChunk]) -> None:
    with pytest.raises(errors.InvalidOption):
        tiny.render(chunk_maker(1), registry.get("placeholder").adapter, rate=0.0)


def test_vocoder_context_outside_the_utterance_is_the_packs_mel_floor(
    tiny: Synthesizer, registry: VoiceRegistry, chunk_maker: Callable[..., PhonemeChunk]
) -> None:
    # Spy on the windows the vocoder receives: frames before the start and past the end carry the floor.
    import dataclasses as dc

    from myna.inference.pipeline import Synthesizer as Synth

    voice = registry.get("placeholder")
    audio = dc.replace(voice.pack.manifest.audio, mel_floor=-11.5)
    pack = dc.replace(voice.pack, manifest=dc.replace(voice.pack.manifest, audio=audio))
    synth = Synth(pack, "tiny")
    seen: list[np.ndarray] = []
    original = synth._vocoder.run
    synth._vocoder.run = lambda window: (seen.append(window.copy()), original(window))[1]  # type: ignore[method-assign]
    rendered = synth.render(chunk_maker(1, 2), voice.adapter)
    collect(rendered)
    overlap = synth._decoder.overlap
    assert np.all(seen[0][:overlap] == np.float32(-11.5))
    total = rendered.total_samples // synth.hop_length
    hop = synth._decoder.hop_frames
    tail = seen[-1][overlap + total - (len(seen) - 1) * hop :]
    assert tail.size and np.all(tail == np.float32(-11.5))
