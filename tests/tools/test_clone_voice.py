"""Voice cloning: synthetic recordings + tiny base models → adapter, held-out loss, quality warnings, transcripts."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sf = pytest.importorskip("soundfile")
pytest.importorskip("librosa")
pytest.importorskip("matplotlib")
pytest.importorskip("pyworld")
pytest.importorskip("tflite")

import clone_voice  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
from clone_support import BASE_HZ, SPEAKERS, TEXTS, features_for_pack, make_base_models, speech, write_recordings  # noqa: E402
from voice import clone  # noqa: E402
from voice.acoustic import AcousticConfig, AcousticModel  # noqa: E402

@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny base models (``clone_support.make_base_models``), built once for the module."""
    torch.set_num_threads(1)
    return make_base_models(tmp_path_factory.mktemp("clone-base"))


def _args(base: dict[str, Path], recordings: Path, out: Path, *extra: str) -> list[str]:
    return ["--recordings", str(recordings), "--acoustic", str(base["acoustic"]), "--vocoder", str(base["vocoder"]),
            "--aligner", str(base["aligner"]), "--voice-id", "test-voice", "--out", str(out), "--steps", "40",
            "--lr", "0.05", "--threads", "1", "--no-progress", "--created", "2026-01-01T00:00:00Z", *extra]


@pytest.fixture(scope="module")
def cloned(base: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("clone-run")
    recordings = write_recordings(root / "recordings")
    out = root / "out"
    # Two base speakers span only a line: free vectors let the fit show what it does with a few clips.
    assert clone_voice.main(_args(base, recordings, out, "--no-asr", "--no-similarity", "--free-vectors")) == 0
    return {"out": out, "report": json.loads((out / "test-voice-report.json").read_text())}


def test_the_adapter_keeps_the_base_rhythm_and_fits_a_timbre_vector(cloned: dict[str, Any], base: dict[str, Path]) -> None:
    with np.load(cloned["out"] / "test-voice.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    assert sorted(arrays) == ["decoder.speaker", "encoder.speaker", "pitch_scale", "speaker"]
    vectors = [arrays[k] for k in ("decoder.speaker", "encoder.speaker", "speaker")]
    assert all(a.dtype == np.float32 and a.shape == (1, 64) and np.all(np.isfinite(a)) for a in vectors)
    table = torch.load(base["acoustic"], weights_only=True)["model"]["speakers.weight"].numpy()
    np.testing.assert_array_equal(arrays["encoder.speaker"][0], table[SPEAKERS.index("joe")])  # the base voice's rhythm
    assert not np.array_equal(arrays["decoder.speaker"], arrays["speaker"])
    report = cloned["report"]
    assert report["adapter"]["params"] == 3 * 64 + 1 and report["adapter"]["fraction_of_base"] < 0.005
    assert report["timbre"]["best_valid"]["mel"] < report["timbre"]["initial_valid"]["mel"]
    assert "`decoder.speaker` float32 [1, 64]" in (cloned["out"] / "test-voice-report.md").read_text()


def test_vectors_stay_in_the_span_of_the_base_speakers_unless_freed(base: dict[str, Path], tmp_path: Path) -> None:
    # Every tier learnt the base rows' directions only; a vector outside them means something else on each tier.
    table = torch.load(base["acoustic"], weights_only=True)["model"]["speakers.weight"].numpy().astype(np.float64)
    mean, basis = clone.table_span(table)
    assert basis.shape == (len(SPEAKERS) - 1, 64)
    recordings = write_recordings(tmp_path / "rec")
    outside = {}
    for label, extra in (("span", ()), ("free", ("--free-vectors",))):
        out = tmp_path / label
        assert clone_voice.main(_args(base, recordings, out, "--no-report", *extra)) == 0
        with np.load(out / "test-voice.npz") as z:
            vectors = [z[k][0].astype(np.float64) for k in ("speaker", "decoder.speaker")]
        outside[label] = max(float(np.linalg.norm((v - mean) - (v - mean) @ basis.T @ basis)) for v in vectors)
    assert outside["span"] < 1e-5 < 1e-2 < outside["free"], outside


def test_the_clone_speaks_at_the_pitch_level_of_its_recordings(cloned: dict[str, Any], base: dict[str, Path],
                                                              tmp_path: Path) -> None:
    # The takes hum at 150–190 Hz with ±10 % vibrato; the base voice predicts 120 Hz everywhere.
    pitch = cloned["report"]["pitch"]
    assert 150.0 <= pitch["recordings_hz"] <= 190.0
    assert pitch["scale"] == pytest.approx(pitch["recordings_hz"] / BASE_HZ, rel=1e-2)
    with np.load(cloned["out"] / "test-voice.npz", allow_pickle=False) as z:
        assert z["pitch_scale"].dtype == np.float32 and float(z["pitch_scale"][0]) == pytest.approx(pitch["scale"])
    assert "`pitch_scale`" in (cloned["out"] / "test-voice-report.md").read_text()
    out = tmp_path / "out"
    assert clone_voice.main(_args(base, write_recordings(tmp_path / "rec"), out, "--no-report", "--pitch", "base")) == 0
    with np.load(out / "test-voice.npz", allow_pickle=False) as z:
        assert "pitch_scale" not in z.files
    assert json.loads((out / "test-voice-report.json").read_text())["pitch"] is None


def test_the_pitch_match_is_clipped_to_the_runtime_range_and_needs_enough_voice(base: dict[str, Path]) -> None:
    from voice.acoustic import load_checkpoint

    model, _, _ = load_checkpoint(base["acoustic"])
    row = clone.speaker_table(model)[0]
    clips = []
    for i, text in enumerate(TEXTS):
        words, ids = clone.TextFrontend()(text, "test")
        audio = speech(1.4 + 0.2 * i, 300.0, 22050, i)  # 300 Hz: over twice the base voice's 120 Hz
        clip = clone.make_clip(f"c{i}", " ".join(words), ids, audio.astype(np.float32))
        frames = clip.mel.shape[0]
        clip.durations = np.diff(np.linspace(0, frames, ids.size + 1).round().astype(np.int64))
        clips.append(clip)
    scale, hz = clone.match_pitch(model, row, clips)
    assert scale == clone.PITCH_SCALE_RANGE[1] and hz > 250.0
    unvoiced = [dataclasses.replace(c, f0=np.zeros_like(c.f0)) for c in clips]
    assert clone.match_pitch(model, row, unvoiced) is None


def test_rhythm_clone_makes_one_vector_for_every_graph(base: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert clone_voice.main(_args(base, write_recordings(tmp_path / "rec"), out, "--no-report", "--rhythm", "clone")) == 0
    with np.load(out / "test-voice.npz", allow_pickle=False) as z:
        assert z.files == ["speaker"]
    report = json.loads((out / "test-voice-report.json").read_text())
    assert report["adapter"]["params"] == 64 and report["timbre"] is None


def test_fitting_lowers_the_held_out_loss(cloned: dict[str, Any]) -> None:
    fit, data = cloned["report"]["fit"], cloned["report"]["data"]
    assert data["recordings"] == 5 and data["held_out_clips"] == 1 and data["train_clips"] == 4
    assert fit["best_valid"]["total"] < 0.9 * fit["initial_valid"]["total"]
    assert fit["best_step"] > 0


def test_the_report_has_its_figures_and_files(cloned: dict[str, Any]) -> None:
    out, ev = cloned["out"], cloned["report"]["evaluation"]
    assert ev["mcd_clone_db"] is not None and ev["mcd_base_db"] is not None
    assert (out / "test-voice-spectrograms.png").stat().st_size > 1000
    text = (out / "test-voice-report.md").read_text()
    assert "Cloned voice `test-voice`" in text and "test-voice-spectrograms.png" in text
    assert len(list((out / "test-voice-wavs").glob("*-clone.wav"))) == 1
    # 5 files of ~2 s: far under 30 s, and the report says so.
    assert any("30 s is recommended" in w for w in cloned["report"]["warnings"])
    rows = cloned["report"]["data"]["files"]
    assert {r["native_rate"] for r in rows} == {16000} and {r["channels"] for r in rows} == {2}


def test_the_report_says_when_the_recordings_lack_the_top_band(cloned: dict[str, Any]) -> None:
    report = json.loads(json.dumps(cloned["report"]))
    # The takes are 16 kHz files: none carries more than 8 kHz less the resampler's roll-off.
    assert set(report["data"]["band_hz"]) == {f"take{i}" for i in range(5)}
    assert all(band <= 7000.0 for band in report["data"]["band_hz"].values())
    assert "carry sound up to" in (cloned["out"] / "test-voice-report.md").read_text()
    report["data"]["band_hz"] = {"take0": 6580.0, "take1": 7000.0}
    assert "sound up to 6.6–7.0 kHz" in clone.markdown(report, None)
    report["data"]["band_hz"] = {"take0": 11025.0}
    assert "kHz (a codec" not in clone.markdown(report, None)


@pytest.mark.parametrize(("kind", "make", "expected"), [
    ("clipped", {"clip": True}, "clipped audio in 5 of 5"),
    ("noisy", {"noise": 0.03}, "noisy audio in 5 of 5"),
    ("8k", {"sr": 8000}, "low sample rate in 5 of 5"),
])
def test_quality_warnings_fire(kind: str, make: dict[str, Any], expected: str, tmp_path: Path) -> None:
    recordings = [clone.read_recording(p, None) for p in clone.find_audio(write_recordings(tmp_path / kind, **make))]
    lines = clone.quality_warnings(recordings, sum(r.audio.size for r in recordings) / 22050)
    assert any(line.startswith(expected) for line in lines), lines
    assert not any(w.startswith(("clipped", "noisy", "low sample")) for w in lines if not w.startswith(expected))


def test_clean_recordings_get_no_quality_warning(tmp_path: Path) -> None:
    recordings = [clone.read_recording(p, None) for p in clone.find_audio(write_recordings(tmp_path / "clean"))]
    assert clone.quality_warnings(recordings, 60.0) == []


def test_missing_transcripts_are_an_error_unless_transcribing(base: dict[str, Path], tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    recordings = write_recordings(tmp_path / "rec", texts=False)
    assert clone_voice.main(_args(base, recordings, tmp_path / "out", "--no-report")) == 2
    err = capsys.readouterr().err
    assert "5 of 5 recording(s) have no transcript" in err and "--transcribe" in err
    assert not (tmp_path / "out" / "test-voice.npz").exists()


def test_transcript_layouts(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("  from a\ttext file \n")
    (tmp_path / "metadata.csv").write_text("b|raw B|spoken b\nc.wav|plain c\n")
    (tmp_path / "transcripts.tsv").write_text("d.flac\tfrom the tsv\n")
    (tmp_path / "transcription").write_text("<s> and mister john dashwood </s> (sense_0870)\n")
    assert clone.read_transcripts(tmp_path) == {"a": "from a text file", "b": "spoken b", "c": "plain c",
                                                "d": "from the tsv", "sense_0870": "and mister john dashwood"}
    other = tmp_path / "csv"
    other.mkdir()
    (other / "metadata.csv").write_text("file,text\nx.wav,\"hello, world\"\n")
    assert clone.read_transcripts(other) == {"x": "hello, world"}


def test_long_recordings_are_split_at_word_breaks(base: dict[str, Path]) -> None:
    from voice.aligner import load_model

    aligner = load_model(base["aligner"])
    frontend = clone.TextFrontend()
    text = " ".join(TEXTS * 3)
    words, ids = frontend(text, "long")
    audio = np.concatenate([clone.metrics.resample(speech(1.6, 140.0, 16000, i), 16000, 22050) for i in range(9)])
    clip = clone.make_clip("long", " ".join(words), ids, audio, clone.native_band(16000))
    assert clip.band_hz <= 7000.0
    clip.durations = clone.align(aligner, clip)
    pieces = clone.split_long(clip, words, aligner, max_seconds=6.0)
    assert len(pieces) >= 3
    assert all(p.band_hz <= clip.band_hz for p in pieces)  # a piece carries no more than its file
    assert all(p.seconds <= 6.0 + 0.1 for p in pieces)
    assert " ".join(p.text for p in pieces) == clip.text
    assert sum(p.ids.size - 2 for p in pieces) == ids.size - 2 - (len(pieces) - 1)  # one break dropped per cut
    assert all(p.durations is not None and p.durations.sum() == p.mel.shape[0] for p in pieces)


def test_any_rate_and_container_is_read_as_mono_at_the_voice_rate(tmp_path: Path) -> None:
    audio = speech(1.0, 150.0, 44100, 0)
    sf.write(str(tmp_path / "a.flac"), np.stack([audio, audio], 1), 44100)
    sf.write(str(tmp_path / "b.ogg"), speech(1.0, 150.0, 48000, 1), 48000, format="OGG", subtype="VORBIS")
    got = {p.name: clone.read_recording(p, "x") for p in clone.find_audio(tmp_path)}
    assert got["a.flac"].quality.native_rate == 44100 and got["a.flac"].quality.channels == 2
    assert got["b.ogg"].quality.native_rate == 48000
    for rec in got.values():
        assert rec.audio.ndim == 1
        # 1.6 s in, 0.75 s of bursts: the silence at the ends is trimmed down to the 0.1 s margins.
        assert 0.9 <= rec.audio.size / 22050 <= 1.0


def test_a_pack_from_another_model_is_refused() -> None:
    from types import SimpleNamespace

    table = np.arange(128, dtype=np.float32).reshape(2, 64)
    good = SimpleNamespace(adapters={"myna-joe": {"speaker": table[:1]}, "myna-other": {"speaker": table[1:]}})
    assert clone._pack_rows(good, table, SPEAKERS) == {"myna-joe": "joe", "myna-other": "other"}
    with pytest.raises(clone.CloneError, match="built from another model"):
        clone._pack_rows(SimpleNamespace(adapters={"x": {"speaker": table[:1] + 1}}), table, SPEAKERS)


@pytest.mark.parametrize(("setting", "expected"), [({"rhythm": "mixed"}, "unknown rhythm"),
                                                  ({"pitch": "higher"}, "unknown pitch")])
def test_unknown_fit_settings_are_refused_before_any_work(setting: dict[str, str], expected: str, tmp_path: Path) -> None:
    # Nothing exists at these paths: the settings are checked before a model or a recording is read.
    missing = tmp_path / "missing"
    job = clone.CloneJob(missing, missing, missing, missing, tmp_path / "out", "test-voice", "Test",
                         fit=clone.FitSettings(**setting))  # type: ignore[arg-type]
    with pytest.raises(clone.CloneError, match=expected):
        clone.clone_voice(job)
    assert not (tmp_path / "out").exists()


def test_a_signed_bundle_needs_a_pack_and_consent(base: dict[str, Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    recordings = write_recordings(tmp_path / "rec")
    assert clone_voice.main(_args(base, recordings, tmp_path / "out", "--key", str(tmp_path / "k.key"))) == 2
    assert "needs --base-pack and the speaker's consent" in capsys.readouterr().err
    assert clone_voice.main(_args(base, recordings, tmp_path / "out", "--consent-by", "Anna")) == 2
    assert "give all of --consent-by" in capsys.readouterr().err


def test_transcribe_fills_in_missing_transcripts(base: dict[str, Path], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    recordings = write_recordings(tmp_path / "rec")
    (recordings / "take2.txt").unlink()
    heard: list[int] = []

    def fake_whisper(audio: np.ndarray, sr: int, *, threads: int = 1) -> str:
        heard.append(sr)
        return "The cat sat on the mat."

    monkeypatch.setattr(clone.metrics, "transcribe", fake_whisper)
    out = tmp_path / "out"
    assert clone_voice.main(_args(base, recordings, out, "--transcribe", "--no-report", "--steps", "2")) == 0
    assert heard == [22050]
    rows = [line.split("\t") for line in (out / "transcripts.tsv").read_text().splitlines()]
    assert ["take2.wav", "The cat sat on the mat.", "whisper"] in rows
    assert ["take0.wav", "hello there", "given"] in rows
    assert json.loads((out / "test-voice-report.json").read_text())["data"]["transcribed"] == ["take2"]


def test_a_signed_bundle_installs_on_the_base_pack(base: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("ai_edge_litert.interpreter")
    from myna.bundles import parse_public_key_line, unpack_bundle, verify_bundle
    from myna.voices import VoicePack
    from voice.pack import TierSource, build_voice_pack
    from voice.signing import generate

    features, card = features_for_pack(tmp_path, base["aligner"])
    pack_dir = build_voice_pack("myna-test", tmp_path / "pack", features, [TierSource("tiny", base["acoustic"], base["vocoder"])],
                                card, calib_chunks=4, vocoder_windows=8, measure_windows=2)
    keys = generate(tmp_path / "keys")
    out = tmp_path / "out"
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("Turn left.\nThe cat sat.\n")
    assert clone_voice.main(_args(base, write_recordings(tmp_path / "rec"), out, "--steps", "5", "--no-asr",
                                  "--no-similarity", "--no-mcd", "--eval-sentences", str(sentences),
                                  "--base-pack", str(pack_dir), "--key", str(keys.private), "--name", "Test Voice",
                                  "--consent-by", "Test Speaker", "--consent-date", "2026-01-01",
                                  "--consent-statement", "I agree to this test voice.")) == 0
    pack = VoicePack.load(pack_dir)
    trusted = parse_public_key_line(keys.public.read_text().strip())
    verified = verify_bundle(unpack_bundle((out / "test-voice.mynavoice").read_bytes()), {trusted.key_id: trusted},
                             {pack.manifest.pack_id: pack})
    manifest = verified.manifest
    with np.load(out / "test-voice.npz") as z:
        assert sorted(verified.adapter) == sorted(z.files) == ["decoder.speaker", "encoder.speaker", "pitch_scale", "speaker"]
        assert all(np.array_equal(verified.adapter[k], z[k]) for k in z.files)
    assert manifest.voice_id == "test-voice" and manifest.base.compatibility == pack.manifest.compatibility_hash()
    assert manifest.speaker.provenance.recordings == 5 and manifest.speaker.consent.given_by == "Test Speaker"
    report = json.loads((out / "test-voice-report.json").read_text())
    assert report["bundle"] == "test-voice.mynavoice" and report["base"]["baseline_speaker"] == "joe"
    # The report's sentences were also spoken by the device runtime with the pack's INT8 graphs and this adapter.
    assert report["evaluation"]["sentences"]["device_count"] == 2 and "tier tiny, int8" in report["evaluation"]["device"]


def test_untranscribed_long_audio_is_cut_at_its_quiet_stretches() -> None:
    sr = 22050
    audio = np.concatenate([speech(3.0 + 0.5 * k, 150.0, sr, k) for k in range(8)])  # ~38 s with 0.6 s gaps
    pieces = clone.silence_cuts(audio, sr)
    assert len(pieces) >= 4
    assert sum(p.size for p in pieces) == audio.size
    assert all(p.size <= clone.MAX_CLIP_SECONDS * sr + 1 for p in pieces)
    # Every cut falls in a quiet stretch, not inside a burst.
    rms = [float(np.sqrt(np.mean(p[-220:] ** 2))) for p in pieces[:-1]]
    assert max(rms) < 0.01


def test_a_pull_keeps_the_vector_nearer_its_starting_row(base: dict[str, Path], tmp_path: Path) -> None:
    recordings = write_recordings(tmp_path / "recordings")
    moved = {}
    for pull in ("0", "100"):
        out = tmp_path / f"pull{pull}"
        assert clone_voice.main(_args(base, recordings, out, "--no-report", "--free-vectors", "--pull", pull)) == 0
        report = json.loads((out / "test-voice-report.json").read_text())
        assert report["fit"]["settings"]["pull"] == float(pull)
        table = torch.load(base["acoustic"], weights_only=True)["model"]["speakers.weight"].numpy()
        init = report["fit"]["init"]
        start = table.mean(axis=0) if init == "table mean" else table[SPEAKERS.index(init)]
        with np.load(out / "test-voice.npz") as z:
            vector = z["speaker"][0]
        moved[pull] = float(np.linalg.norm(vector - start))
    assert moved["100"] < 0.5 * moved["0"], moved


def test_the_film_delta_experiment_fits_deltas_for_the_clone_only(base: dict[str, Path], tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    sys.path.insert(0, str(REPO / "tools" / "experiments"))
    import clone_film_deltas

    recordings = write_recordings(tmp_path / "recordings")
    original = clone_film_deltas.clone.fit_speaker
    try:
        assert clone_film_deltas.main(["--blocks", "decoder", "--pull", "0.1", "--",
                                       *_args(base, recordings, tmp_path / "out", "--no-asr", "--no-similarity")]) == 0
    finally:
        clone_film_deltas.clone.fit_speaker = original
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("FiLM deltas"))
    assert "(decoder, 4 blocks, 1024 floats)" in line  # tiny tier: 4 decoder blocks × 2 × 128
    with pytest.raises(SystemExit, match="no --key"):
        clone_film_deltas.main(["--", "--key", "k"])


def test_the_clarity_experiment_keeps_hull_vectors_between_the_rows_and_restores_the_fit(
        base: dict[str, Path], tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "tools" / "experiments"))
    import clone_clarity

    table = torch.load(base["acoustic"], weights_only=True)["model"]["speakers.weight"].numpy().astype(np.float64)
    args = _args(base, write_recordings(tmp_path / "recordings"), tmp_path / "unused")
    saved = clone.table_span, clone._SpanRow, clone.holdout_split
    path = clone_clarity.variant("hull", args, tmp_path, "test-voice", table[0].astype(np.float32))
    assert (clone.table_span, clone._SpanRow, clone.holdout_split) == saved
    with np.load(path) as z:
        vectors = [z[k][0].astype(np.float64) for k in ("speaker", "decoder.speaker")]
    # Two base rows: a convex mix lies on the segment between them.
    a, b = table
    for v in vectors:
        t = float((v - a) @ (b - a) / ((b - a) @ (b - a)))
        assert -1e-4 <= t <= 1 + 1e-4 and np.linalg.norm(a + t * (b - a) - v) < 1e-4


def test_the_clarity_experiment_picks_development_lines_from_the_corpus_only(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "tools" / "experiments"))
    import clone_clarity

    rows = [{"source": s, "written": f"{s} line {i}."} for s in ("prompts", "prose", "carrier") for i in range(2000)]
    metadata = tmp_path / "metadata.jsonl"
    metadata.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    picked = clone_clarity.dev_sentences(metadata)
    assert len(picked) == 40 and picked[0] == "prompts line 0." and picked[20] == "prose line 0."
    assert not any(p.startswith("carrier") for p in picked)


def test_the_clarity_experiment_tells_a_slow_onset_from_a_sharp_one(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    sys.path.insert(0, str(REPO / "tools" / "experiments"))
    import clone_clarity

    rate = 22050
    t = np.arange(rate) / rate
    tone = np.sin(2 * np.pi * 200 * t)
    for label, ramp_s in (("sharp", 0.005), ("slow", 0.08)):
        (tmp_path / label).mkdir()
        envelope = np.clip((t - 0.1) / ramp_s, 0, 1)
        sf.write(tmp_path / label / "001.wav", 0.5 * tone * envelope + 1e-4 * np.random.default_rng(0).standard_normal(rate), rate)
    clone_clarity.onsets([f"sharp={tmp_path / 'sharp'}", f"slow={tmp_path / 'slow'}"])
    rise = {line.split(":")[0]: int(line.split("rise ")[1].split(" ms")[0]) for line in capsys.readouterr().out.splitlines()}
    # A linear 80 ms ramp climbs from −20 to −10 dB of full level in about 17 ms.
    assert rise["sharp"] <= 5 < 10 <= rise["slow"] <= 20, rise


def test_the_clarity_experiment_makes_a_narrowband_copy_of_the_recordings(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "tools" / "experiments"))
    import clone_clarity

    recordings = write_recordings(tmp_path / "recordings", sr=22050)
    copy = clone_clarity.narrowband(recordings, 8000, tmp_path / "phone")
    files = sorted(p.name for p in copy.iterdir())
    assert files == sorted(p.name for p in recordings.iterdir())  # every take and its transcript
    assert {sf.info(str(p)).samplerate for p in copy.glob("*.wav")} == {8000}
    assert (copy / "take0.txt").read_text() == (recordings / "take0.txt").read_text()


def _voice(sr: int, seconds: float = 2.0) -> np.ndarray:
    """A 140 Hz voice whose harmonics reach the Nyquist frequency (6 dB/octave tilt) over a microphone's hiss."""
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * 140.0 * t
    tone = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, int(sr / 2 / 140)))
    syllables = np.clip(np.sin(2 * np.pi * 3.0 * t), 0.1, None)
    return 0.1 * tone * syllables + 1e-3 * rng.normal(size=t.size)


def test_a_full_band_recording_is_fitted_on_every_mel_bin() -> None:
    sr = 22050
    band = clone.recorded_band(_voice(sr))
    assert band == sr / 2
    assert clone.mel_bins_within(band).sum() == 80


@pytest.mark.parametrize("native, lowest, highest", [(8000, 2500.0, 3100.0), (16000, 6500.0, 7100.0)])
def test_a_band_limited_recording_is_fitted_only_below_its_band_edge(native: int, lowest: float, highest: float) -> None:
    import librosa

    sr = 22050
    # Recorded at ``native`` Hz (a phone line, a 16 kHz dictation file), then resampled to the voice rate.
    audio = librosa.resample(librosa.resample(_voice(sr), orig_sr=sr, target_sr=native), orig_sr=native, target_sr=sr)
    band = clone.recorded_band(audio)
    assert lowest <= band <= highest
    bins = clone.mel_bins_within(band)
    kept = int(bins.sum())
    assert 0 < kept < 80 and bins[:kept].all() and not bins[kept:].any()


def test_a_file_carries_at_most_its_own_nyquist_band() -> None:
    # A click can fake a wide spectrum; the file's sample rate cannot.
    assert clone.native_band(8000) == 3000.0 and clone.native_band(16000) == 7000.0
    assert clone.mel_bins_within(clone.native_band(44100)).sum() == 80


def test_the_mel_loss_leaves_out_the_bins_a_recording_lacks() -> None:
    from voice.acoustic import collate, losses, make_example

    torch.manual_seed(0)
    model = AcousticModel(AcousticConfig.for_tier("tiny", n_speakers=1, dropout=0.0)).eval()
    rng = np.random.default_rng(0)
    ids, durations = np.array([1, 5, 6, 7, 2]), np.array([1, 3, 4, 3, 1])
    frames = int(durations.sum())
    within = torch.from_numpy(clone.mel_bins_within(4000.0))[None, None, :]
    kept = int(within.sum())
    mel = rng.normal(size=(frames, 80)) - 6.0
    muffled = mel.copy()
    muffled[:, kept:] = -11.5  # the bins over the recording's band edge hold nothing but the log floor

    def mel_loss(target: np.ndarray, bins: torch.Tensor | None) -> float:
        example = make_example(ids, durations, np.full(frames, 120.0), np.ones(frames), target)
        with torch.no_grad():
            return float(losses(model, collate([example], [0], model.cfg), bins)["mel"])

    assert 40 < kept < 80
    assert mel_loss(mel, within) == pytest.approx(mel_loss(muffled, within), rel=1e-6)
    assert mel_loss(mel, None) != pytest.approx(mel_loss(muffled, None), rel=1e-3)
