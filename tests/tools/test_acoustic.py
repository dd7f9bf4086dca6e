"""Acoustic model: training on a synthetic features dir, padding and window invariance, INT8 export run by the runtime."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tflite")
pytest.importorskip("matplotlib")
pytest.importorskip("ai_edge_litert.interpreter")

import train_acoustic  # noqa: E402
from myna.inference.acoustic import Alignment, Decoder, Encoder  # noqa: E402
from myna.inference.runtime import Graph  # noqa: E402
from myna.voices import GraphSpec  # noqa: E402
from voice.acoustic import (  # noqa: E402
    AcousticModel, Corpus, TorchDecoderGraph, collate, load_checkpoint, phoneme_means,
)
from voice.export_acoustic import export_acoustic  # noqa: E402

SPEAKERS = ["joe", "other"]
N_UTTERANCES = 10


def _write_features(root: Path, seed: int = 0) -> Path:
    """A features dir in the design doc's layout: mel built from per-id templates, so there is something to learn."""
    rng = np.random.default_rng(seed)
    templates = rng.normal(-5.0, 2.0, (77, 80)).astype(np.float32)
    root.mkdir(parents=True)
    (root / "speakers.json").write_text(json.dumps({"speakers": SPEAKERS}))
    index = []
    for u in range(N_UTTERANCES):
        speaker = SPEAKERS[u % 2]
        n = int(rng.integers(12, 30))
        ids = np.concatenate([[1], rng.integers(8, 77, n - 2), [2]]).astype(np.int32)
        dur = rng.integers(1, 9, n).astype(np.int32)
        dur[rng.integers(1, n - 1)] = 0  # the aligner may give a phoneme no frames
        t = int(dur.sum())
        slots = np.repeat(np.arange(n), dur)
        mel = templates[ids[slots]] + (0.5 if speaker == "other" else 0.0) + rng.normal(0, 0.1, (t, 80)).astype(np.float32)
        f0 = np.where(rng.random(t) < 0.7, rng.uniform(90, 260, t), 0.0).astype(np.float32)
        energy = rng.normal(-1.0, 1.5, t).astype(np.float32)
        (root / speaker).mkdir(exist_ok=True)
        utt = f"u{u:03d}"
        np.savez(root / speaker / f"{utt}.npz", ids=ids, mel=mel, f0=f0, energy=energy, audio_peak=np.float32(0.9))
        np.save(root / speaker / f"{utt}.dur.npy", dur)
        index.append({"speaker": speaker, "id": utt, "frames": t, "n_ids": n,
                      "split": "valid" if u in (3, 8) else "train", "seconds": t * 256 / 22050})
    (root / "index.jsonl").write_text("".join(json.dumps(e) + "\n" for e in index))
    return root


def _perturbed(model: AcousticModel, seed: int = 0) -> AcousticModel:
    """Trained-looking BatchNorm statistics and FiLM/residual weights that matter (20 steps leave them near init)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("bn.running_mean"):
                t.copy_(torch.rand(t.shape, generator=gen) * 0.6 - 0.3)
            elif name.endswith("bn.running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) * 2.0 + 0.3)
            elif name.endswith(("film.weight", "film.bias")):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
            elif name.endswith("fc2.weight"):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
    return model.eval()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """20 steps of the tiny tier on the synthetic features, then 4 more through --resume."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("acoustic")
    features = _write_features(root / "features")
    out = root / "run"
    common = ["--features", str(features), "--tier", "tiny", "--out", str(out), "--batch", "4", "--lr", "3e-3",
              "--warmup", "2", "--log-every", "5", "--valid-every", "10", "--threads", "1", "--dropout", "0"]
    assert train_acoustic.main(common + ["--steps", "20"]) == 0
    first = json.loads((out / "history.json").read_text())
    assert train_acoustic.main(common + ["--steps", "24", "--resume"]) == 0
    return {"features": features, "out": out, "history": first, "resumed": json.loads((out / "history.json").read_text())}


@pytest.fixture(scope="module")
def exported(trained: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The trained checkpoint, perturbed to trained-looking statistics, exported to INT8."""
    model, speakers, ckpt = load_checkpoint(trained["out"] / "final.pt")
    ckpt["model"] = _perturbed(model).state_dict()
    work = tmp_path_factory.mktemp("export")
    path = work / "ckpt" / "perturbed.pt"
    path.parent.mkdir()
    torch.save(ckpt, path)
    entries = export_acoustic(path, work / "pack", "tiny", trained["features"], calib_chunks=16)
    report = json.loads((path.parent / "export-tiny.json").read_text())
    return {"entries": entries, "pack": work / "pack", "report": report, "model": load_checkpoint(path)[0]}


def test_training_lowers_the_loss_and_writes_its_outputs(trained: dict[str, Any]) -> None:
    rows = trained["history"]["train"]
    assert [r["step"] for r in rows] == [5, 10, 15, 20]
    assert rows[-1]["total"] < 0.7 * rows[0]["total"]
    assert rows[-1]["mel"] < rows[0]["mel"]
    out = trained["out"]
    for name in ("best.pt", "final.pt", "last.pt", "curves.png", "mels/step_0000010.png", "mels/step_0000020.png"):
        assert (out / name).is_file(), name
    # Weights-only checkpoints load without unpickling arbitrary objects.
    ckpt = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
    assert set(ckpt) >= {"config", "speakers", "model"} and ckpt["speakers"] == SPEAKERS
    # --resume continued the step count and the history instead of starting over.
    assert [r["step"] for r in trained["resumed"]["valid"]] == [10, 20, 24]


def test_a_new_tier_can_share_the_speaker_rows_of_a_trained_one(trained: dict[str, Any], tmp_path: Path) -> None:
    donor = torch.load(trained["out"] / "final.pt", map_location="cpu", weights_only=True)
    out = tmp_path / "shared"
    assert train_acoustic.main(["--features", str(trained["features"]), "--tier", "tiny", "--out", str(out),
                                "--batch", "4", "--warmup", "2", "--steps", "6", "--valid-every", "6", "--threads", "1",
                                "--speaker-table", str(trained["out"] / "final.pt")]) == 0
    got = torch.load(out / "final.pt", map_location="cpu", weights_only=True)["model"]["speakers.weight"]
    torch.testing.assert_close(got, donor["model"]["speakers.weight"], rtol=0, atol=0)  # frozen, not fine-tuned


def test_phoneme_targets_average_voiced_frames_only() -> None:
    f0 = np.array([0, 100, 300, 0, 0, 200], np.float64)
    got = phoneme_means(f0 / 100, np.array([3, 0, 2, 1]), f0 > 0)
    np.testing.assert_allclose(got, [2.0, 0.0, 0.0, 2.0])


def test_padding_does_not_change_real_ids(trained: dict[str, Any]) -> None:
    model = _perturbed(load_checkpoint(trained["out"] / "final.pt")[0])
    ids = torch.tensor([[1, 20, 33, 41, 9, 60, 2]])
    spk = model.speakers(torch.tensor([1]))
    with torch.no_grad():
        short = model.encode(ids, spk)
        long = model.encode(torch.nn.functional.pad(ids, (0, 57)), spk)
    for a, b in zip(short, long):
        torch.testing.assert_close(b[:, : ids.shape[1]], a, atol=1e-5, rtol=1e-5)
    assert torch.all(long.hidden[:, ids.shape[1] :] == 0)


def test_runtime_windows_reproduce_the_training_decoder(trained: dict[str, Any]) -> None:
    """The decoder trained on zero-padded whole utterances gives the same mel in the runtime's overlapping windows."""
    model = _perturbed(load_checkpoint(trained["out"] / "final.pt")[0])
    corpus = Corpus(trained["features"])
    item = max(corpus.items, key=lambda i: i.frames)
    ex = corpus.example(item)
    batch = collate([ex], [item.speaker], model.cfg)
    with torch.no_grad():
        enc, full = model(batch)
    d = ex.durations.astype(np.int64)
    alignment = Alignment(enc.hidden[0].numpy(), batch.pitch[0].numpy(), d, np.cumsum(d))
    spk = model.speakers.weight[item.speaker].detach().numpy()

    def windowed(overlap: int) -> np.ndarray:
        graph = TorchDecoderGraph(model, 3 * overlap + 8)
        graph.inputs["speaker"][0] = spk
        dec = Decoder(graph, overlap)  # type: ignore[arg-type]
        parts = [dec.run(alignment, f).copy() for f in range(0, alignment.total_frames, dec.hop_frames)]
        return np.concatenate(parts)[: alignment.total_frames]

    context = model.cfg.decoder_context
    exact = np.abs(windowed(context) - full[0].numpy()).max()
    short = np.abs(windowed(context - 2) - full[0].numpy()).max()
    assert exact < 1e-4
    assert short > 1e-3  # too little overlap does show, so the check above can fail


def test_export_is_one_partition_per_graph_and_tracks_float(exported: dict[str, Any]) -> None:
    check = exported["report"]["int8_vs_float"]
    assert check["partitions"] == {"encoder": 1, "decoder": 1}
    for key in ("hidden", "log_duration", "pitch", "mel"):
        assert check[key]["corr"] > 0.98, (key, check[key])
    assert check["mel"]["corr_centred"] > 0.98, check["mel"]
    entries = exported["entries"]
    assert [t["name"] for t in entries["encoder"]["inputs"]] == ["phoneme_ids", "speaker"]
    assert [t["name"] for t in entries["encoder"]["outputs"]] == ["hidden", "log_duration", "pitch"]
    assert entries["decoder"]["inputs"][0] == {"name": "frames", "dtype": "float32", "shape": [1, 48, 128]}
    assert entries["decoder"]["outputs"] == [{"name": "mel", "dtype": "float32", "shape": [1, 48, 80]}]


def test_runtime_encoder_and_decoder_run_the_exported_graphs(exported: dict[str, Any]) -> None:
    pack, entries, model = exported["pack"], exported["entries"], exported["model"]
    graphs = {role: Graph(pack / e["file"], GraphSpec.from_dict(e, role)) for role, e in entries.items()}
    spk = model.speakers.weight[0].detach().numpy()
    for g in graphs.values():
        g.inputs["speaker"][0] = spk
    encoder = Encoder(graphs["encoder"])
    assert encoder.bucket == 64
    ids = (1, 20, 33, 41, 9, 60, 12, 2)
    alignment = encoder.run(ids, rate=1.0, pitch_factor=1.0)
    assert alignment.hidden.shape == (64, 128)
    assert np.all(alignment.hidden[len(ids) :] == 0.0)  # padding rows come out exactly zero
    assert np.all(alignment.durations[len(ids) :] == 0)
    decoder = Decoder(graphs["decoder"], exported["report"]["overlap"])
    mel = decoder.run(alignment, 0)
    assert mel.shape == (48 - 2 * 8, 80) and np.all(np.isfinite(mel))


def test_session_limit_stops_early_and_resume_keeps_the_schedule(trained: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "run"
    common = ["--features", str(trained["features"]), "--tier", "tiny", "--out", str(out), "--batch", "4",
              "--warmup", "2", "--log-every", "1", "--valid-every", "100", "--threads", "1", "--steps", "50"]
    # A session limit that has already passed: the run stops after its first step but saves everything.
    assert train_acoustic.main(common + ["--session-minutes", "1e-9"]) == 0
    assert json.loads((out / "history.json").read_text())["valid"][-1]["step"] == 1
    assert (out / "final.pt").is_file() and (out / "last.pt").is_file()
    assert train_acoustic.main(common + ["--session-minutes", "1e-9", "--resume"]) == 0
    assert [v["step"] for v in json.loads((out / "history.json").read_text())["valid"]] == [1, 2]


def test_init_warm_starts_from_a_half_precision_weights_only_checkpoint(trained: dict[str, Any], tmp_path: Path) -> None:
    ckpt = torch.load(trained["out"] / "final.pt", map_location="cpu", weights_only=True)
    ckpt["model"] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    torch.save(ckpt, tmp_path / "half.pt")
    out = tmp_path / "run"
    args = ["--features", str(trained["features"]), "--tier", "tiny", "--out", str(out), "--batch", "4",
            "--warmup", "2", "--log-every", "1", "--valid-every", "100", "--threads", "1", "--steps", "30",
            "--init", str(tmp_path / "half.pt"), "--init-step", "24"]
    assert train_acoustic.main(args) == 0
    history = json.loads((out / "history.json").read_text())
    assert history["valid"][-1]["step"] == 30  # the schedule went on from step 24
    # The warm start begins near the trained loss, not from scratch.
    assert history["train"][0]["total"] < trained["history"]["train"][0]["total"]
