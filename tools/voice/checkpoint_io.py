"""Crash-safe checkpoint writes: a training killed mid-save keeps its previous checkpoint whole."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary name beside ``path``, then rename over it (atomic on one filesystem)."""
    import torch

    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
