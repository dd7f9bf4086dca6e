"""Shared fixtures: the committed placeholder voice loaded for real, and an event recorder."""

from __future__ import annotations

from pathlib import Path

import pytest

from myna.catalog import SynthCatalog, packaged_voice_dir
from support import EventLog

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def placeholder_catalog() -> SynthCatalog:
    """The shipped placeholder pack at the tiny tier: real LiteRT interpreters, built once.

    Only the placeholder's folder, so a trained pack installed beside it in models/ changes nothing here.
    """
    return SynthCatalog.from_dirs([packaged_voice_dir() / "placeholder"], tier="tiny", threads=1)


@pytest.fixture
def event_log() -> EventLog:
    """A fresh recorder."""
    return EventLog()
