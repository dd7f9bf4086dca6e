"""Fixtures for inference tests: the placeholder pack generated fresh by the committed script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from myna.inference.pipeline import Synthesizer
from myna.text.units import PhonemeChunk, WordSpan
from myna.voices import VoiceRegistry

REPO = Path(__file__).resolve().parents[2]


def generate_pack(out: Path) -> Path:
    """Run tools/make_placeholder_voice.py into ``out``."""
    subprocess.run(
        [sys.executable, str(REPO / "tools" / "make_placeholder_voice.py"), "--out", str(out)],
        check=True, capture_output=True, timeout=50,
    )
    return out


@pytest.fixture(scope="session")
def generated_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly generated placeholder pack directory."""
    return generate_pack(tmp_path_factory.mktemp("placeholder"))


@pytest.fixture(scope="session")
def registry(generated_pack: Path) -> VoiceRegistry:
    """Registry over the generated pack."""
    return VoiceRegistry([generated_pack])


@pytest.fixture(scope="session")
def tiny(registry: VoiceRegistry) -> Synthesizer:
    """Tiny-tier synthesizer of the placeholder pack."""
    return Synthesizer(registry.get("placeholder").pack, "tiny", num_threads=1)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def pack_generator() -> Callable[[Path], Path]:
    """The committed generator script, as a function of the output directory."""
    return generate_pack


@pytest.fixture(scope="session")
def chunk_maker() -> Callable[..., PhonemeChunk]:
    """Build a PhonemeChunk of N words (see make_chunk)."""
    return make_chunk


def make_chunk(words: int, letters: int = 4) -> PhonemeChunk:
    """A chunk of ``words`` words of ``letters`` ids each, with BOS/EOS and word breaks."""
    ids, word_of, spans = [1], [-1], []
    for w in range(words):
        if w:
            ids.append(3)
            word_of.append(-1)
        ids.extend(9 + (w * letters + i) % 26 for i in range(letters))
        word_of.extend([w] * letters)
        spans.append(WordSpan(w * (letters + 1), letters))
    ids.append(2)
    word_of.append(-1)
    return PhonemeChunk(tuple(ids), tuple(word_of), tuple(spans))
