"""Checkpoint writes are atomic: a failed save leaves the previous file whole and no temporary behind."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from voice import checkpoint_io  # noqa: E402


def test_a_save_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    checkpoint_io.save({"step": 1}, path)
    checkpoint_io.save({"step": 2}, path)
    assert torch.load(path, weights_only=True) == {"step": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    checkpoint_io.save({"step": 1}, path)
    with pytest.raises(Exception):
        checkpoint_io.save({"step": 2, "unpicklable": lambda: None}, path)
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
