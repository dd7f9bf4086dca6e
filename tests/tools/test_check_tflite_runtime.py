"""tools/check_tflite_runtime.py: its inputs and distance here, the real LiteRT vs tflite-runtime 2.14 run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import check_tflite_runtime as check

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted(f"{p.parent.name}/{p.name}" for p in (REPO / "models").glob("*/*.tflite"))


def test_every_shipped_graph_gets_the_inputs_the_engine_feeds_it() -> None:
    cases = check.collect_cases(REPO / "models")
    assert sorted(cases) == SHIPPED
    for key, (path, spec, runs) in cases.items():
        assert path.is_file() and runs, key
        for run in runs:
            assert set(run) == {t.name for t in spec.inputs}
            assert all(np.all(np.isfinite(a)) for a in run.values())
    ids = cases["myna-en/small-encoder.tflite"][2][0]["phoneme_ids"]
    assert 0 < np.count_nonzero(ids) and ids.max() < 77  # ids of myna-arpabet v1, padded with 0
    frames = cases["myna-en/small-decoder.tflite"][2][0]["frames"]
    assert np.any(frames != 0)  # length-regulated encoder states, not zeros
    letters = cases["g2p-en/g2p.tflite"][2]
    assert len(letters) == len(check.G2P_WORDS) and letters[0]["letters"][0, :4].tolist() == [13, 25, 14, 1]  # "myna"


def test_mfcc_distance_is_zero_for_the_same_audio_and_grows_with_a_change() -> None:
    from workbench.metrics import mcd_from_cepstra

    rate = 22050
    t = np.arange(rate) / rate
    voice = np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    same = mcd_from_cepstra(check.mfcc(voice, rate), check.mfcc(voice.copy(), rate))
    other = mcd_from_cepstra(check.mfcc(voice, rate), check.mfcc(np.sin(2 * np.pi * 1800 * t), rate))
    assert same == 0.0 and other > check.SAY_MAX_MFCC_DB


@pytest.mark.timeout(600)
@pytest.mark.skipif(
    not check.DEFAULT_OTHER.exists(),
    reason=f"no tflite-runtime 2.14 venv at {check.DEFAULT_OTHER.parent.parent.name} (.ci/run creates it)",
)
def test_shipped_graphs_and_the_engine_run_alike_in_tflite_runtime_2_14() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / "check_tflite_runtime.py"), "--say"],
        capture_output=True, text=True, cwd=REPO, timeout=560, check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert "tflite-runtime: runtime tflite-runtime 2.14.0" in out.stdout and "litert_importable False" in out.stdout
    for key in SHIPPED:
        assert any(line.startswith("OK    " + key) for line in lines), key
    assert any(line.startswith("OK    say") for line in lines)
