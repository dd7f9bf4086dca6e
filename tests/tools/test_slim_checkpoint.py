"""tools/slim_checkpoint.py: the committed checkpoints are fp16 weights with their metadata and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import slim_checkpoint  # noqa: E402


def test_weights_become_fp16_metadata_stays_and_optimizer_state_goes(tmp_path: Path) -> None:
    source, target = tmp_path / "last.pt", tmp_path / "slim.pt"
    torch.save({"config": {"dim": 4}, "model": {"w": torch.randn(4, 4), "n": torch.tensor(3)}, "step": 7,
                "speakers": ["joe"], "opt": {"state": torch.randn(1000)}}, source)
    assert slim_checkpoint.main([str(source), str(target)]) == 0
    slim = torch.load(target, weights_only=True)
    assert set(slim) == {"config", "model", "step", "speakers"}
    assert slim["model"]["w"].dtype == torch.float16 and slim["model"]["n"].dtype == torch.int64
    torch.testing.assert_close(slim["model"]["w"].float(), torch.load(source, weights_only=True)["model"]["w"],
                               atol=1e-2, rtol=1e-3)


def test_a_file_without_weights_is_refused(tmp_path: Path) -> None:
    torch.save({"step": 1}, tmp_path / "x.pt")
    with pytest.raises(SystemExit, match="no 'model'"):
        slim_checkpoint.main([str(tmp_path / "x.pt"), str(tmp_path / "y.pt")])
