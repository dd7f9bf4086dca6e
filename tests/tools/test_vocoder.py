"""Vocoder training tool, INT8 export (and its float32 twin) and the runtime's log-magnitude/phase path, on small real runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tflite")
pytest.importorskip("ai_edge_litert.interpreter")
sf = pytest.importorskip("soundfile")
pytest.importorskip("librosa")

from myna.inference.vocoder import Vocoder as RuntimeVocoder  # noqa: E402
from myna.voices import AudioSpec  # noqa: E402
from voice.audio import AUDIO, hann, log_mel  # noqa: E402
from voice.vocoder_data import from_features  # noqa: E402
from voice.export_vocoder import OUTPUTS, build_graph, fold_speaker_map, graph_spec, run_litert  # noqa: E402
from workbench.tflite_builder import QuantOptions  # noqa: E402
from voice.vocoder import TIERS, Vocoder, VocoderConfig, istft, spectrum  # noqa: E402

SR, HOP, N_FFT = AUDIO.sample_rate, AUDIO.hop_length, AUDIO.n_fft
SPEC = AudioSpec(SR, HOP, N_FFT, N_FFT)


def _voiced(seconds: float, f0: float, seed: int) -> np.ndarray:
    """A gliding harmonic tone with a syllable-like envelope and a little noise (speech-ish test audio)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.2 * np.sin(2 * np.pi * 0.7 * t))) / SR
    tone = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t) ** 2
    return (0.15 * tone * envelope + 0.003 * rng.normal(size=t.size)).astype(np.float32)


def _features(root: Path, gain: float = 0.5) -> tuple[Path, Path]:
    """A two-speaker corpus of wavs and its features folder (the design-doc layout)."""
    corpus, features = root / "corpus", root / "features"
    rows = []
    for s, (speaker, f0) in enumerate((("joe", 110.0), ("other", 190.0))):
        (corpus / speaker / "wavs").mkdir(parents=True)
        (features / speaker).mkdir(parents=True)
        for u in range(3):
            raw = _voiced(1.2 + 0.2 * u, f0 * (1 + 0.05 * u), seed=10 * s + u)
            sf.write(str(corpus / speaker / "wavs" / f"u{u}.wav"), raw, SR, subtype="PCM_16")
            audio = (sf.read(str(corpus / speaker / "wavs" / f"u{u}.wav"), dtype="float64")[0] * gain).astype(np.float32)
            mel = log_mel(audio)
            np.savez(features / speaker / f"u{u}.npz", mel=mel, gain=np.float32(gain))
            rows.append({"speaker": speaker, "id": f"u{u}", "frames": int(mel.shape[0]), "n_ids": 3,
                         "split": "valid" if u == 2 and speaker == "joe" else "train", "seconds": audio.size / SR})
    (features / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (features / "speakers.json").write_text(json.dumps({"speakers": ["joe", "other"]}))
    return corpus, features


def _randomize(model: Vocoder, seed: int = 0) -> Vocoder:
    """Trained-looking BatchNorm statistics and speaker-dependent FiLMs, eval mode."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for block in model.blocks:
            block.bn.running_mean.uniform_(-0.3, 0.3)
            block.bn.running_var.uniform_(0.3, 2.0)
            block.film.weight.normal_(0.0, 0.1)
            block.fc2.weight.normal_(0.0, 0.05)
    return model.eval()


class _FakeGraph:
    """Stands in for a loaded vocoder Graph: serves precomputed output frames window by window."""

    def __init__(self, frames: dict[str, np.ndarray], chunk: int, overlap: int, mels: int = 80) -> None:
        self.inputs = {"mel": np.zeros((1, chunk, mels), np.float32)}
        self.outputs = {name: np.zeros((1, chunk, v.shape[1]), np.float32) for name, v in frames.items()}
        total = next(iter(frames.values())).shape[0]
        # Window k covers global frames [k·hop_frames − overlap, … + chunk); pad both ends.
        self._padded = {name: np.pad(v, ((overlap, chunk), (0, 0))) for name, v in frames.items()}
        self._hop_frames, self._chunk, self._k, self.total = chunk - 2 * overlap, chunk, 0, total

    def run(self) -> None:
        start = self._k * self._hop_frames
        for name, padded in self._padded.items():
            self.outputs[name][0] = padded[start : start + self._chunk]
        self._k += 1


def _runtime_audio(frames: dict[str, np.ndarray], chunk: int = 32, overlap: int = 4) -> np.ndarray:
    graph = _FakeGraph(frames, chunk, overlap)
    vocoder = RuntimeVocoder(graph, SPEC, overlap)  # type: ignore[arg-type]
    vocoder.start(graph.total)
    blocks = []
    for _ in range(-(-graph.total // vocoder.hop_frames)):
        blocks.append(vocoder.run(graph.inputs["mel"][0]).copy())
    return np.concatenate(blocks)


def test_tiny_vocoder_trains_resumes_and_writes_its_files(tmp_path: Path) -> None:
    import train_vocoder

    corpus, features = _features(tmp_path)
    out = tmp_path / "run"
    common = ["--tier", "tiny", "--features", str(features), "--corpus", str(corpus), "--out", str(out),
              "--batch", "4", "--segment", "32", "--lr", "3e-3", "--warmup", "1", "--log-every", "5",
              "--valid-every", "20", "--valid-utts", "1", "--threads", "1"]
    assert train_vocoder.main(common + ["--steps", "20"]) == 0
    history = json.loads((out / "history.json").read_text())
    losses = [h["loss"] for h in history["train"]]
    assert losses[-1] < 0.8 * losses[0], losses
    for name in ("last.pt", "best.pt", "final.pt", "curves.png"):
        assert (out / name).is_file(), name
    assert len(list((out / "samples").glob("step20_joe_u2.wav"))) == 1
    small = torch.load(out / "final.pt", map_location="cpu", weights_only=True)
    assert set(small) == {"config", "model", "speaker_table", "speakers", "step", "valid"}
    assert small["speaker_table"].shape == (2, 64)
    # Resume continues the step count and the history, with the discriminators joining.
    assert train_vocoder.main(common + ["--steps", "25", "--resume", "--adv-start", "20"]) == 0
    history = json.loads((out / "history.json").read_text())
    assert history["train"][-1]["step"] == 25 and "adv" in history["train"][-1]


def test_training_audio_carries_the_features_gain(tmp_path: Path) -> None:
    import train_vocoder

    corpus, features = _features(tmp_path, gain=0.5)
    rows = [json.loads(line) for line in (features / "index.jsonl").read_text().splitlines()]
    data = from_features(features, corpus, rows, ["joe", "other"])
    clip = data.clip(0)
    raw = sf.read(str(corpus / "joe" / "wavs" / "u0.wav"), dtype="float32")[0]
    np.testing.assert_allclose(clip.audio, raw * 0.5, atol=1e-6)
    np.testing.assert_allclose(log_mel(clip.audio), clip.mel, atol=1e-5)


def test_int8_export_runs_in_one_partition_and_tracks_torch(tmp_path: Path) -> None:
    model = _randomize(Vocoder(TIERS["tiny"]))
    rng = np.random.default_rng(0)
    mels = np.stack([log_mel(_voiced(64 * HOP / SR, 100 + 20 * i, seed=i))[:64] for i in range(24)])
    speakers = rng.normal(0.0, 0.3, (24, 64))
    graph = build_graph(model.state_dict(), model.cfg, mels[:20], speakers[:20], frame_chunk=64).serialize()
    got, partitions = run_litert(graph, {"mel": mels[20:], "speaker": speakers[20:]})
    assert partitions == 1
    assert set(got[0]) == set(OUTPUTS) and got[0]["log_magnitude"].shape == (64, 513)
    with torch.no_grad():
        ref = model(torch.from_numpy(mels[20:]).float(), torch.from_numpy(speakers[20:]).float())
    for k, name in enumerate(OUTPUTS):
        a, b = np.stack([g[name] for g in got]).ravel(), ref[k].numpy().ravel()
        assert np.corrcoef(a, b)[0, 1] > 0.99, name


def test_float32_twin_runs_in_one_partition_and_matches_torch_far_closer_than_int8() -> None:
    model = _randomize(Vocoder(TIERS["tiny"]))
    rng = np.random.default_rng(0)
    mels = np.stack([log_mel(_voiced(64 * HOP / SR, 100 + 20 * i, seed=i))[:64] for i in range(24)])
    speakers = rng.normal(0.0, 0.3, (24, 64))
    with torch.no_grad():
        ref = model(torch.from_numpy(mels[20:]).float(), torch.from_numpy(speakers[20:]).float())
    errors = {}
    for precision in ("int8", "float32"):
        graph = build_graph(model.state_dict(), model.cfg, mels[:20], speakers[:20], 64, precision)
        got, partitions = run_litert(graph.serialize(), {"mel": mels[20:], "speaker": speakers[20:]})
        assert partitions == 1, precision
        errors[precision] = max(float(np.abs(np.stack([g[name] for g in got]) - ref[k].numpy()).max())
                                for k, name in enumerate(OUTPUTS))
    assert errors["float32"] < 1e-3 and errors["float32"] < errors["int8"] / 100, errors


def test_speaker_map_fold_makes_the_graph_take_other_rows() -> None:
    model = _randomize(Vocoder(VocoderConfig(dim=32, ffn=64, blocks=2)))
    rng = np.random.default_rng(1)
    own, target = rng.normal(size=(5, 64)), rng.normal(size=(5, 64))
    state, residual = fold_speaker_map(model.state_dict(), own, target)
    assert residual < 1e-6
    folded = Vocoder(model.cfg)
    folded.load_state_dict(state)
    folded.eval()
    mel = torch.from_numpy(rng.normal(-5.0, 2.0, (1, 20, 80))).float()
    with torch.no_grad():
        a = model(mel, torch.from_numpy(own[3:4]).float())
        b = folded(mel, torch.from_numpy(target[3:4]).float())
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.numpy(), y.numpy(), atol=1e-4)


def test_torch_istft_equals_runtime_overlap_add() -> None:
    model = _randomize(Vocoder(VocoderConfig(dim=32, ffn=64, blocks=2)))
    mel = torch.from_numpy(log_mel(_voiced(100 * HOP / SR, 140.0, seed=3))[None, :100])
    with torch.no_grad():
        log_mag, px, py = model(mel, torch.zeros(1, 64))
        log_mag = log_mag + 2.0  # audible, still far from clipping
        reference = istft(spectrum(log_mag, px, py), model.cfg)[0].numpy()
    frames = {"log_magnitude": log_mag[0].numpy(), "phase_x": px[0].numpy(), "phase_y": py[0].numpy()}
    runtime = _runtime_audio(frames)
    assert runtime.shape == reference.shape == (100 * HOP,)
    assert 0.01 < np.abs(reference).max() < 1.0
    # Everywhere but the utterance's first and last n_fft/2 samples, which the runtime fades by design.
    inner = slice(N_FFT // 2, 100 * HOP - N_FFT)
    np.testing.assert_allclose(runtime[inner], reference[inner], atol=1e-4)


def test_runtime_rebuilds_a_sine_mixture_from_log_magnitude_and_phase() -> None:
    n = 90 * HOP
    t = np.arange(n) / SR
    signal = (0.3 * np.sin(2 * np.pi * 220.0 * t) + 0.2 * np.sin(2 * np.pi * 1234.5 * t + 1.0)
              + 0.1 * np.sin(2 * np.pi * 4321.0 * t) * (1 + np.sin(2 * np.pi * 2 * t)) / 2).astype(np.float32)
    padded = np.pad(signal, (N_FFT // 2, N_FFT // 2), mode="reflect")
    total = n // HOP + 1
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(total)[:, None]
    stft = np.fft.rfft(padded[idx] * hann(), axis=-1)
    # The phase vector's length is arbitrary: only its angle may reach the audio.
    length = np.random.default_rng(0).uniform(0.3, 3.0, stft.shape)
    frames: dict[str, Any] = {
        "log_magnitude": np.log(np.abs(stft) + 1e-9).astype(np.float32),
        "phase_x": (np.cos(np.angle(stft)) * length).astype(np.float32),
        "phase_y": (np.sin(np.angle(stft)) * length).astype(np.float32),
    }
    audio = _runtime_audio(frames)
    assert audio.size == total * HOP
    inner = slice(N_FFT // 2, n - N_FFT // 2)
    np.testing.assert_allclose(audio[inner], signal[inner], atol=2e-4)
    # The placeholder's convention still works on the same frames.
    rect = {"stft_real": stft.real.astype(np.float32), "stft_imag": stft.imag.astype(np.float32)}
    np.testing.assert_allclose(_runtime_audio(rect)[inner], signal[inner], atol=2e-4)


@pytest.mark.parametrize("precision", ["int8", "float32"])
def test_polar_vocoder_graph_runs_in_a_voice_pack(tmp_path: Path, precision: str) -> None:
    from myna.inference.pipeline import Synthesizer
    from myna.text.units import PhonemeChunk, WordSpan
    from myna.voices import VoicePack
    from workbench import placeholder_voice as pv

    pack_dir = pv.build_pack(tmp_path / "pack")
    dims = pv.TIERS["tiny"]
    cfg = VocoderConfig(dim=16, ffn=32, blocks=2, n_mels=pv.N_MELS, speaker_dim=pv.SPEAKER_DIM)
    assert cfg.receptive_frames <= dims.overlap
    model = _randomize(Vocoder(cfg))
    rng = np.random.default_rng(2)
    graph = build_graph(model.state_dict(), cfg, rng.normal(0.0, 1.0, (16, dims.frame_chunk, pv.N_MELS)),
                        np.concatenate([pv.speaker_vector(1), pv.speaker_vector(2)] * 8), dims.frame_chunk, precision)
    data = graph.serialize()
    (pack_dir / "tiny-vocoder.tflite").write_bytes(data)
    manifest = json.loads((pack_dir / "manifest.json").read_text())
    spec = graph_spec(graph, "tiny-vocoder.tflite", data)
    assert spec.quantization == precision
    assert [t.to_dict() for t in spec.outputs] == [
        {"name": n, "dtype": "float32", "shape": [1, dims.frame_chunk, 513]} for n in OUTPUTS]
    manifest["tiers"]["tiny"]["graphs"]["vocoder"] = spec.to_dict()
    (pack_dir / "manifest.json").write_text(json.dumps(manifest))
    pack = VoicePack.load(pack_dir)
    synth = Synthesizer(pack, "tiny", num_threads=1)
    assert synth.delegate_partitions()["vocoder"] == 1
    chunk = PhonemeChunk((1, 9, 10, 11, 12, 3, 13, 14, 15, 2), (-1, 0, 0, 0, 0, -1, 1, 1, 1, -1),
                         (WordSpan(0, 4), WordSpan(5, 3)))
    audio = synth.render(chunk, {"speaker": pv.speaker_vector(1)})
    samples = np.concatenate([b.copy() for b in audio.blocks()])
    assert samples.size == audio.total_samples > 0 and np.all(np.isfinite(samples)) and np.any(samples != 0)


def test_int8_options_keep_one_partition_and_track_torch() -> None:
    model = _randomize(Vocoder(TIERS["tiny"]))
    rng = np.random.default_rng(0)
    mels = np.stack([log_mel(_voiced(64 * HOP / SR, 100 + 20 * i, seed=i))[:64] for i in range(24)])
    speakers = rng.normal(0.0, 0.3, (24, 64))
    options = QuantOptions(per_channel_fc=True, range_method="mse", equalize=0.5)
    graph = build_graph(model.state_dict(), model.cfg, mels[:20], speakers[:20], 64, "int8", options).serialize()
    got, partitions = run_litert(graph, {"mel": mels[20:], "speaker": speakers[20:]})
    assert partitions == 1
    with torch.no_grad():
        ref = model(torch.from_numpy(mels[20:]).float(), torch.from_numpy(speakers[20:]).float())
    for k, name in enumerate(OUTPUTS):
        assert np.corrcoef(np.stack([g[name] for g in got]).ravel(), ref[k].numpy().ravel())[0, 1] > 0.99, name
