"""tools/evaluate.py end to end on small inputs: WAV folders, the runtime's placeholder voice, failures."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

import evaluate

SR = 22050


def _have(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def _sentences(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "sentences.txt"
    path.write_text("# a comment line\n\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def _tone(f0: float, seconds: float = 0.6) -> np.ndarray:
    """Harmonics plus a little white noise: every band sits far above 16-bit WAV quantization."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, int(10000 / f0)))
    x = x / np.abs(x).max() + 0.01 * np.random.default_rng(0).standard_normal(len(t))
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def test_read_sentences_skips_comments_and_blanks(tmp_path: Path) -> None:
    path = _sentences(tmp_path, ["One.", "  Two.  ", "# not this", "Three."])
    assert evaluate.read_sentences(path) == ["One.", "Two.", "Three."]


def test_find_wav_accepts_the_usual_names(tmp_path: Path) -> None:
    for name in ("001.wav", "2.wav", "0003.wav"):
        soundfile.write(str(tmp_path / name), np.zeros(10, dtype=np.float32), SR)
    assert [evaluate.find_wav(tmp_path, i) for i in (1, 2, 3)] == [tmp_path / "001.wav", tmp_path / "2.wav", tmp_path / "0003.wav"]
    assert evaluate.find_wav(tmp_path, 4) is None


def test_a_failing_sentence_is_reported_not_raised() -> None:
    def render(index: int, text: str) -> tuple[np.ndarray, int]:
        if index == 2:
            raise RuntimeError("boom")
        return _tone(150.0), SR

    results, clips, _ = evaluate.evaluate(
        ["a", "b", "c"], render, reference=None, asr=False, mos=False, threads=1, save_wavs=None, render_only=False, keep=0
    )
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error == "RuntimeError: boom"
    assert sorted(clips) == [1, 3]
    summary = evaluate.summarize(results, None)
    assert summary["failed"] == [2] and summary["synthesized"] == 2


def test_wav_folder_with_a_missing_file(tmp_path: Path) -> None:
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    soundfile.write(str(wavs / "001.wav"), _tone(150.0), SR)
    sentences = _sentences(tmp_path, ["First sentence.", "Second sentence."])
    out = tmp_path / "out"
    assert evaluate.main(["--wavs", str(wavs), "--sentences", str(sentences), "--out", str(out), "--name", "t",
                          "--no-asr", "--no-dnsmos", "--plot", "0"]) == 0
    report = json.loads((out / "t.json").read_text())
    assert report["summary"]["failed"] == [2]
    assert report["sentences"][1]["error"].startswith("FileNotFoundError")
    md = (out / "t.md").read_text()
    assert "python tools/evaluate.py --wavs" in md and "**failed:**" in md


@pytest.mark.skipif(not _have("pyworld", "pysptk", "scipy"), reason="pyworld/pysptk/scipy not installed (the 'train' extra)")
def test_mcd_against_reference_folder(tmp_path: Path) -> None:
    sys_dir, ref_dir = tmp_path / "sys", tmp_path / "ref"
    for folder in (sys_dir, ref_dir):
        folder.mkdir()
    soundfile.write(str(sys_dir / "001.wav"), _tone(150.0), SR)
    soundfile.write(str(ref_dir / "001.wav"), 0.5 * _tone(150.0), SR)
    out = tmp_path / "out"
    evaluate.main(["--wavs", str(sys_dir), "--reference-wavs", str(ref_dir), "--sentences", str(_sentences(tmp_path, ["One."])),
                   "--out", str(out), "--name", "m", "--no-asr", "--no-dnsmos", "--plot", "0"])
    report = json.loads((out / "m.json").read_text())
    assert report["summary"]["mcd_db"] < 0.1


def test_myna_voice_through_the_runtime(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sentences = _sentences(tmp_path, ["Turn left.", "Battery 15 percent."])
    assert evaluate.main(["--myna-voice", "placeholder", "--tier", "tiny", "--sentences", str(sentences), "--out", str(out),
                          "--save-wavs", str(out / "wavs"), "--render-only", "--plot", "0"]) == 0
    report = json.loads((out / "myna-placeholder.json").read_text())
    assert report["summary"]["synthesized"] == 2
    audio, sr = soundfile.read(str(out / "wavs" / "002.wav"))
    assert sr > 0 and len(audio) > 0.2 * sr and np.abs(audio).max() > 0.01


def test_myna_voice_from_a_named_pack_folder(tmp_path: Path) -> None:
    pack = Path(__file__).resolve().parents[2] / "models" / "placeholder"
    out = tmp_path / "out"
    assert evaluate.main(["--myna-voice", "placeholder", "--tier", "tiny", "--voices", str(pack), "--out", str(out),
                          "--sentences", str(_sentences(tmp_path, ["Turn left."])), "--render-only", "--plot", "0"]) == 0
    report = json.loads((out / "myna-placeholder.json").read_text())
    assert report["summary"]["synthesized"] == 1
    assert report["setup"]["system"] == f"myna:placeholder@tiny from {pack}"


def test_myna_voice_at_a_requested_rate_and_pitch(tmp_path: Path) -> None:
    sentences = _sentences(tmp_path, ["Turn left at the next light."])
    lengths = {}
    for label, extra in (("plain", []), ("slow", ["--rate", "0.5", "--pitch", "0.8"])):
        out = tmp_path / label
        assert evaluate.main(["--myna-voice", "placeholder", "--tier", "tiny", "--sentences", str(sentences), "--out", str(out),
                              "--save-wavs", str(out / "wavs"), "--render-only", "--plot", "0", *extra]) == 0
        lengths[label] = len(soundfile.read(str(out / "wavs" / "001.wav"))[0])
    assert 1.8 * lengths["plain"] < lengths["slow"] < 2.2 * lengths["plain"]
    report = json.loads((tmp_path / "slow" / "myna-placeholder.json").read_text())
    assert report["setup"]["system"] == "myna:placeholder@tiny rate 0.5 pitch 0.8"
    with pytest.raises(SystemExit):
        evaluate.parse_args(["--myna-voice", "placeholder", "--pitch", "3", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        evaluate.parse_args(["--wavs", str(tmp_path), "--rate", "2", "--out", str(tmp_path)])


def test_adapter_replaces_the_voice_speaker(tmp_path: Path, placeholder_catalog: object) -> None:
    speaker = placeholder_catalog.bind("placeholder").speaker  # type: ignore[attr-defined]
    adapter = tmp_path / "other.npz"
    shifted: dict[str, Any] = {k: (np.asarray(v) + 0.5).astype(np.float32) for k, v in speaker.items()}
    np.savez(adapter, **shifted)
    sentences = _sentences(tmp_path, ["Turn left."])
    renders = {}
    for label, extra in (("own", []), ("adapter", ["--adapter", str(adapter)])):
        evaluate.main(["--myna-voice", "placeholder", "--tier", "tiny", "--sentences", str(sentences), "--out", str(tmp_path / label),
                       "--save-wavs", str(tmp_path / label / "wavs"), "--render-only", "--plot", "0", *extra])
        renders[label] = soundfile.read(str(tmp_path / label / "wavs" / "001.wav"))[0]
    n = min(len(renders["own"]), len(renders["adapter"]))
    assert not np.allclose(renders["own"][:n], renders["adapter"][:n])


def test_adapter_with_wrong_tensors_is_refused(tmp_path: Path) -> None:
    adapter = tmp_path / "bad.npz"
    np.savez(adapter, nonsense=np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="adapter holds"):
        evaluate.main(["--myna-voice", "placeholder", "--tier", "tiny", "--adapter", str(adapter),
                       "--sentences", str(_sentences(tmp_path, ["Hi."])), "--out", str(tmp_path / "o"), "--render-only"])


@pytest.mark.skipif(not _have("matplotlib", "librosa"), reason="matplotlib/librosa not installed (the 'train' extra)")
def test_png_with_system_and_reference(tmp_path: Path) -> None:
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    for i in (1, 2):
        soundfile.write(str(wavs / f"{i:03d}.wav"), _tone(120.0 + 30 * i), SR)
    out = tmp_path / "out"
    evaluate.main(["--wavs", str(wavs), "--sentences", str(_sentences(tmp_path, ["A.", "B."])), "--out", str(out),
                   "--name", "p", "--render-only", "--plot", "2"])
    assert (out / "p.png").stat().st_size > 1000
