"""The trained-pack builder: a tiny acoustic model and vocoder trained for a few steps, packed, loaded and spoken."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tflite")
pytest.importorskip("matplotlib")
pytest.importorskip("ai_edge_litert.interpreter")
sf = pytest.importorskip("soundfile")
pytest.importorskip("librosa")

import tflite  # noqa: E402
import train_acoustic  # noqa: E402
import train_vocoder  # noqa: E402
from myna.inference.pipeline import Synthesizer  # noqa: E402
from myna.text.phonemes import CURRENT  # noqa: E402
from myna.text.units import PhonemeChunk, WordSpan  # noqa: E402
from myna.voices import VoicePack, VoiceRegistry  # noqa: E402
from voice.audio import AUDIO, log_mel, stft_magnitude  # noqa: E402
from voice.pack import PackError, TierSource, build_voice_pack, geometry, voice_name  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SPEAKERS = ["joe", "flite-slt", "kokoro-jf_alpha"]
SR, HOP = AUDIO.sample_rate, AUDIO.hop_length


def _tone(seconds: float, f0: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.15 * np.sin(2 * np.pi * 0.9 * t))) / SR
    tone = sum(np.sin(k * phase) / k for k in range(1, 10))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 2.5 * t) ** 2
    return (0.15 * tone * envelope + 0.003 * rng.normal(size=t.size)).astype(np.float32)


def _corpus_and_features(root: Path) -> tuple[Path, Path, Path]:
    """Wavs, a features folder in the design doc's layout (acoustic and vocoder arrays, durations) and a data card."""
    corpus, features = root / "corpus", root / "features"
    rng = np.random.default_rng(0)
    rows, card = [], {}
    for s, speaker in enumerate(SPEAKERS):
        (corpus / speaker / "wavs").mkdir(parents=True)
        (features / speaker).mkdir(parents=True)
        f0 = 100.0 + 60.0 * s
        for u in range(4):
            utt = f"u{u}"
            path = corpus / speaker / "wavs" / f"{utt}.wav"
            sf.write(str(path), _tone(1.0 + 0.15 * u, f0, 10 * s + u), SR, subtype="PCM_16")
            audio = sf.read(str(path), dtype="float32")[0]
            mel = log_mel(audio)
            t = mel.shape[0]
            n = int(rng.integers(12, 24))
            ids = np.concatenate([[1], rng.integers(8, CURRENT.size, n - 2), [2]]).astype(np.int32)
            cuts = np.sort(rng.choice(np.arange(1, t), n - 1, replace=False))
            dur = np.diff(np.concatenate([[0], cuts, [t]])).astype(np.int32)
            energy = np.log(np.maximum(np.linalg.norm(stft_magnitude(audio), axis=1), 1e-5)).astype(np.float32)
            np.savez(features / speaker / f"{utt}.npz", ids=ids, mel=mel, f0=np.full(t, f0, np.float32), energy=energy,
                     audio_peak=np.float32(np.abs(audio).max()), gain=np.float32(1.0), samples=np.int64(audio.size))
            np.save(features / speaker / f"{utt}.dur.npy", dur)
            rows.append({"speaker": speaker, "id": utt, "frames": t, "n_ids": n, "split": "valid" if u == 3 else "train",
                         "seconds": audio.size / SR})
        card[speaker] = {"engine": speaker.split("-")[0] if "-" in speaker else "piper", "voice": speaker,
                         "hours": 0.001 * (s + 1), "utterances": 4, "licence": f"licence of {speaker}",
                         "provenance": "test"}
    (features / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (features / "speakers.json").write_text(json.dumps({"speakers": SPEAKERS}))
    datacard = root / "datacard.json"
    datacard.write_text(json.dumps({"generated": "2026-01-01T00:00:00Z", "speakers": card,
                                    "sources": {"prompts": {"licence": "Apache-2.0"}}}))
    return corpus, features, datacard


def _trained_looking(state: dict[str, Any], seed: int) -> dict[str, Any]:
    """BatchNorm statistics and FiLM/residual weights that matter (a few steps leave them near their init)."""
    gen = torch.Generator().manual_seed(seed)
    out = dict(state)
    for name, t in state.items():
        if name.endswith("bn.running_mean"):
            out[name] = torch.rand(t.shape, generator=gen) * 0.6 - 0.3
        elif name.endswith("bn.running_var"):
            out[name] = torch.rand(t.shape, generator=gen) * 1.7 + 0.3
        elif name.endswith(("film.weight", "film.bias", "fc2.weight")):
            out[name] = torch.randn(t.shape, generator=gen) * 0.1
    return out


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A few training steps of the tiny acoustic model and vocoder, made trained-looking."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("voicepack")
    corpus, features, datacard = _corpus_and_features(root)
    acoustic_run, vocoder_run = root / "acoustic-tiny", root / "vocoder-tiny"
    assert train_acoustic.main(["--features", str(features), "--tier", "tiny", "--out", str(acoustic_run), "--batch", "4",
                                "--lr", "3e-3", "--warmup", "2", "--log-every", "4", "--valid-every", "8",
                                "--threads", "1", "--dropout", "0", "--steps", "8"]) == 0
    assert train_vocoder.main(["--tier", "tiny", "--features", str(features), "--corpus", str(corpus), "--out",
                               str(vocoder_run), "--batch", "4", "--segment", "32", "--lr", "3e-3", "--warmup", "1",
                               "--log-every", "3", "--valid-every", "6", "--valid-utts", "1", "--threads", "1",
                               "--steps", "6"]) == 0
    paths = {}
    for kind, run, seed in (("acoustic", acoustic_run, 1), ("vocoder", vocoder_run, 2)):
        ckpt = torch.load(run / "final.pt", map_location="cpu", weights_only=True)
        ckpt["model"] = _trained_looking(ckpt["model"], seed)
        paths[kind] = run / "looks-trained.pt"
        torch.save(ckpt, paths[kind])
    return {"root": root, "features": features, "datacard": datacard, **paths}


@pytest.fixture(scope="module")
def pack(sources: dict[str, Any]) -> Path:
    tier = TierSource("tiny", sources["acoustic"], sources["vocoder"])
    return build_voice_pack("myna-test", sources["root"] / "pack", sources["features"], [tier], sources["datacard"],
                            default_voice="joe", calib_chunks=8, vocoder_windows=16, measure_windows=4,
                            training_notes=["vocoder fine-tuned elsewhere on teacher-forced mels"])


def test_geometry_covers_both_receptive_fields_and_the_runtime_limits() -> None:
    assert geometry(8, 12) == (64, 12)  # tiny: decoder ±8, vocoder ±12
    assert geometry(12, 12) == (64, 12)  # small
    assert geometry(12, 16) == (72, 16)  # base
    for context, receptive in ((1, 1), (8, 12), (12, 16), (30, 2)):
        chunk, overlap = geometry(context, receptive)
        hop_frames = chunk - 2 * overlap
        assert overlap >= max(context, receptive) and hop_frames >= max(40, overlap) and hop_frames * HOP >= AUDIO.n_fft


def test_voice_names_are_readable() -> None:
    assert [voice_name(s) for s in ("joe", "flite-slt", "festival-slt-hts", "kokoro-jf_alpha")] == [
        "Joe", "Flite SLT", "Festival SLT HTS", "Kokoro jf_alpha"]


@pytest.fixture(scope="module")
def float_pack(sources: dict[str, Any]) -> Path:
    tier = TierSource("tiny", sources["acoustic"], sources["vocoder"])
    return build_voice_pack("myna-test-float", sources["root"] / "pack-float", sources["features"], [tier],
                            sources["datacard"], default_voice="joe", calib_chunks=8, vocoder_windows=16,
                            measure_windows=4, precision="float32")


def test_pack_loads_with_every_voice_one_partition_each_and_its_card(pack: Path) -> None:
    loaded = VoicePack.load(pack)
    manifest = loaded.manifest
    assert (manifest.pack_id, manifest.default_voice, list(manifest.tiers)) == ("myna-test", "joe", ["tiny"])
    assert not manifest.placeholder
    assert {k: v.name for k, v in manifest.voices.items()} == {
        "joe": "Joe", "flite-slt": "Flite SLT", "kokoro-jf_alpha": "Kokoro jf_alpha"}
    assert manifest.audio.mel_floor == pytest.approx(np.log(1e-5))
    assert (manifest.phoneme_inventory.name, manifest.phoneme_inventory.version) == (CURRENT.name, CURRENT.version)
    tier = manifest.tiers["tiny"]
    assert (tier.phoneme_bucket, tier.frame_chunk, tier.overlap) == (64, 64, 12)
    rows = torch.load(loaded.root.parent / "acoustic-tiny" / "looks-trained.pt", weights_only=True)["model"]["speakers.weight"]
    for i, speaker in enumerate(SPEAKERS):
        adapter = loaded.adapters[speaker]["speaker"]
        assert adapter.shape == (1, 64) and adapter.dtype == np.float32
        np.testing.assert_array_equal(adapter[0], rows[i].numpy())
    synth = Synthesizer(loaded, "tiny", num_threads=1)
    assert synth.delegate_partitions() == {"encoder": 1, "decoder": 1, "vocoder": 1}
    export = json.loads((pack / "export.json").read_text())
    report = export["tiers"]["tiny"]
    assert report["int8_vs_float"]["vocoder"]["xnnpack_partitions"] == 1
    assert set(report["int8_vs_float"]["acoustic"]["partitions"].values()) == {1}
    assert report["training"]["acoustic"]["step"] == 8 and report["training"]["vocoder"]["run_steps"] == 6
    assert report["int8_vs_float"]["vocoder"]["speaker_map_residual"] < 1e-4
    card = (pack / "MODEL_CARD.md").read_text()
    for text in ("## Architecture", "## Training", "## INT8 versus float", "## Known limits", "licence of flite-slt",
                 f"{report['params']['vocoder']:,}", "- vocoder fine-tuned elsewhere on teacher-forced mels"):
        assert text in card, text


def test_float32_twin_pack_keeps_the_contract_and_tracks_torch_closer(pack: Path, float_pack: Path,
                                                                     sources: dict[str, Any]) -> None:
    int8, twin = VoicePack.load(pack).manifest.tiers["tiny"], VoicePack.load(float_pack).manifest.tiers["tiny"]
    assert (twin.phoneme_bucket, twin.frame_chunk, twin.overlap) == (int8.phoneme_bucket, int8.frame_chunk, int8.overlap)
    for role, graph in twin.graphs.items():
        assert (graph.quantization, int8.graphs[role].quantization) == ("float32", "int8")
        assert (graph.inputs, graph.outputs) == (int8.graphs[role].inputs, int8.graphs[role].outputs)
        assert (float_pack / graph.file).stat().st_size > 2 * (pack / int8.graphs[role].file).stat().st_size
    synth = Synthesizer(VoicePack.load(float_pack), "tiny", num_threads=1)
    assert synth.delegate_partitions() == {"encoder": 1, "decoder": 1, "vocoder": 1}
    reports = {p: json.loads((p / "export.json").read_text())["tiers"]["tiny"] for p in (pack, float_pack)}
    q, f = reports[pack]["int8_vs_float"], reports[float_pack]["float32_vs_float"]
    assert "int8_vs_float" not in reports[float_pack]
    for key in ("hidden", "log_duration", "pitch", "mel"):
        assert f["acoustic"][key]["corr"] > 0.9999, key
        assert f["acoustic"][key]["mae"] < q["acoustic"][key]["mae"] / 10, key
    assert f["vocoder"]["corr_log_magnitude"] > 0.9999 and f["vocoder"]["audio_snr_db"] > q["vocoder"]["audio_snr_db"] + 20
    card = (float_pack / "MODEL_CARD.md").read_text()
    assert "## Float32 graphs versus the torch model" in card and "float32 (unquantized reference" in card
    # Building packs leaves the checkpoints' folders alone (training may be writing there).
    assert not list(sources["acoustic"].parent.glob("export-*.json"))


def test_voices_sound_different_through_the_runtime(pack: Path) -> None:
    loaded = VoicePack.load(pack)
    synth = Synthesizer(loaded, "tiny", num_threads=1)
    chunk = PhonemeChunk((1, 9, 10, 11, 12, 3, 13, 14, 15, 2), (-1, 0, 0, 0, 0, -1, 1, 1, 1, -1),
                         (WordSpan(0, 4), WordSpan(5, 3)))
    audio = {}
    for voice in ("joe", "flite-slt"):
        rendered = synth.render(chunk, loaded.adapters[voice], rate=0.5)
        audio[voice] = np.concatenate([b.copy() for b in rendered.blocks()])
        assert audio[voice].size == rendered.total_samples > 0 and np.all(np.isfinite(audio[voice]))
    a, b = audio["joe"], audio["flite-slt"]
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_registry_prefers_the_trained_pack_and_the_cli_lists_it(pack: Path) -> None:
    placeholder = REPO / "models" / "placeholder"
    for order in ([placeholder, pack], [pack, placeholder]):
        assert VoiceRegistry(order).default_id == "joe"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "daemon"), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-m", "myna.cli", "--voices", str(pack), "--board", "generic-x86_64",
                             "voices", "--local"], capture_output=True, text=True, timeout=60, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert rows == [["flite-slt", "en-US", "Flite SLT"], ["joe", "en-US", "Joe"], ["kokoro-jf_alpha", "en-US", "Kokoro jf_alpha"]]


def test_rebuilding_gives_identical_bytes(pack: Path, sources: dict[str, Any]) -> None:
    before = {p.name: p.read_bytes() for p in pack.iterdir()}
    assert {"manifest.json", "MODEL_CARD.md", "export.json", "joe.npz", "tiny-encoder.tflite", "tiny-decoder.tflite",
            "tiny-vocoder.tflite"} <= set(before)
    again = build_voice_pack("myna-test", pack, sources["features"], [TierSource("tiny", sources["acoustic"], sources["vocoder"])],
                             sources["datacard"], default_voice="joe", calib_chunks=8, vocoder_windows=16, measure_windows=4,
                             training_notes=["vocoder fine-tuned elsewhere on teacher-forced mels"])
    after = {p.name: p.read_bytes() for p in again.iterdir()}
    assert sorted(after) == sorted(before)
    for name in before:
        assert after[name] == before[name], name
    assert not pack.with_name(pack.name + ".partial").exists()


def test_a_graph_two_tiers_share_is_stored_once(sources: dict[str, Any], tmp_path: Path) -> None:
    # Every device receives the whole pack: base reusing small's vocoder must not cost a second copy.
    tiers = [TierSource(t, sources["acoustic"], sources["vocoder"]) for t in ("tiny", "small")]
    out = build_voice_pack("x", tmp_path / "pack", sources["features"], tiers, sources["datacard"], default_voice="joe",
                           calib_chunks=8, vocoder_windows=16, measure_windows=4)
    assert sorted(p.name for p in out.glob("*.tflite")) == ["tiny-decoder.tflite", "tiny-encoder.tflite", "tiny-vocoder.tflite"]
    loaded = VoicePack.load(out)
    for role in ("encoder", "decoder", "vocoder"):
        assert loaded.graph_path("small", role) == loaded.graph_path("tiny", role)
        assert loaded.manifest.tiers["small"].graphs[role].sha256 == loaded.manifest.tiers["tiny"].graphs[role].sha256


def test_tiers_with_different_speaker_tables_are_refused(sources: dict[str, Any], tmp_path: Path) -> None:
    ckpt = torch.load(sources["acoustic"], map_location="cpu", weights_only=True)
    ckpt["model"]["speakers.weight"] = ckpt["model"]["speakers.weight"] + 0.5
    other = tmp_path / "other.pt"
    torch.save(ckpt, other)
    tiers = [TierSource("tiny", sources["acoustic"], sources["vocoder"]), TierSource("small", other, sources["vocoder"])]
    with pytest.raises(PackError, match="different acoustic speaker tables"):
        build_voice_pack("x", tmp_path / "pack", sources["features"], tiers, sources["datacard"])
    assert not (tmp_path / "pack").exists() and not (tmp_path / "pack.partial").exists()


def test_bad_voice_lists_and_foreign_output_folders_are_refused(sources: dict[str, Any], tmp_path: Path) -> None:
    tier = [TierSource("tiny", sources["acoustic"], sources["vocoder"])]
    with pytest.raises(PackError, match="not speakers"):
        build_voice_pack("x", tmp_path / "a", sources["features"], tier, sources["datacard"], voice_ids=["joe", "nobody"])
    with pytest.raises(PackError, match="default voice"):
        build_voice_pack("x", tmp_path / "b", sources["features"], tier, sources["datacard"], voice_ids=["flite-slt"])
    foreign = tmp_path / "models"
    (foreign / "placeholder").mkdir(parents=True)
    with pytest.raises(PackError, match="not a previous build"):
        build_voice_pack("x", foreign, sources["features"], tier, sources["datacard"], calib_chunks=4, vocoder_windows=4,
                         measure_windows=2)
    assert (foreign / "placeholder").is_dir()
    with pytest.raises(PackError, match="TIER=ACOUSTIC.pt,VOCODER.pt"):
        TierSource.parse("tiny=only-one.pt")
    shutil.rmtree(foreign)


def test_the_command_line_reports_bad_input_in_one_line(sources: dict[str, Any], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    import make_voice_pack

    tier = f"small={sources['acoustic']},{sources['vocoder']}"
    assert make_voice_pack.main(["--out", str(tmp_path / "p"), "--features", str(sources["features"]), "--datacard",
                                 str(sources["datacard"]), "--tier", tier, "--default-voice", "nobody"]) == 2
    assert capsys.readouterr().err.startswith("make_voice_pack: default voice 'nobody' is not one of the pack's voices")
    assert make_voice_pack.main(["--datacard", str(tmp_path / "none.json"), "--tier", tier]) == 2
    assert "pass --datacard" in capsys.readouterr().err
    for out in ([], ["--out", str(REPO / "models" / "myna-test-float")]):
        with pytest.raises(SystemExit) as exit_info:
            make_voice_pack.main(["--precision", "float32", "--tier", tier, *out])
        assert exit_info.value.code == 2
        assert "give an --out outside models/" in capsys.readouterr().err


def test_int8_options_reach_every_graph_from_the_command_line(sources: dict[str, Any], tmp_path: Path) -> None:
    import make_voice_pack

    tier = f"tiny={sources['acoustic']},{sources['vocoder']}"
    out = tmp_path / "pack-options"
    assert make_voice_pack.main(["--pack-id", "myna-test", "--out", str(out), "--features", str(sources["features"]),
                                 "--datacard", str(sources["datacard"]), "--tier", tier, "--calib-chunks", "8",
                                 "--vocoder-windows", "16", "--measure-windows", "4", "--int8-fc-per-channel",
                                 "--int8-ranges", "mse", "--int8-equalize", "0.5"]) == 0
    export = json.loads((out / "export.json").read_text())["tiers"]["tiny"]
    assert export["int8_options"] == {"per_channel_fc": True, "range_method": "mse", "equalize": 0.5}
    assert set(export["int8_vs_float"]["acoustic"]["partitions"].values()) == {1}
    assert export["int8_vs_float"]["vocoder"]["xnnpack_partitions"] == 1
    manifest = json.loads((out / "manifest.json").read_text())
    for graph in manifest["tiers"]["tiny"]["graphs"].values():
        model = tflite.Model.GetRootAsModel((out / graph["file"]).read_bytes(), 0)
        sub = model.Subgraphs(0)
        fc_weights = [sub.Tensors(sub.Operators(i).Inputs(1)) for i in range(sub.OperatorsLength())
                      if model.OperatorCodes(sub.Operators(i).OpcodeIndex()).BuiltinCode()
                      == tflite.BuiltinOperator.FULLY_CONNECTED]
        assert fc_weights and all(t.Quantization().ScaleLength() == t.Shape(0) for t in fc_weights), graph["file"]
