"""ALSA without a sound card: a ``type file`` PCM over the ``null`` slave, defined in a per-test asoundrc.

alsa-lib keeps its parsed configuration in a process-wide cache, but ``snd_config_update()``
(run by every ``snd_pcm_open``) compares the ``ALSA_CONFIG_PATH`` file list and the files'
identities/mtimes with what it loaded and re-reads on any change.  So setting the variable
per test (monkeypatch) before the PCM is opened works within one process; no subprocess is
needed.  ``test_alsa_config_is_reread_per_open`` guards that assumption.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ALSA_CONF = Path("/usr/share/alsa/alsa.conf")


@dataclass(frozen=True)
class FilePcm:
    """A file-backed ALSA PCM defined for one test."""

    device: str
    """PCM name to pass as the ALSA device."""

    pattern: str
    """The plugin's file name; ``%r`` expands to the rate the PCM was opened at."""

    def path(self, rate: int) -> Path:
        """The raw file the PCM writes when opened at ``rate``."""
        return Path(self.pattern.replace("%r", str(rate)))

    def samples(self, rate: int) -> np.ndarray:
        """The int16 samples that reached the device at ``rate``."""
        return np.fromfile(self.path(rate), dtype="<i2")


@pytest.fixture
def make_file_pcm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], FilePcm]:
    """Return a factory that (re)points ALSA at a fresh asoundrc defining a file PCM."""
    pytest.importorskip("alsaaudio")
    if not ALSA_CONF.exists():
        pytest.skip(f"{ALSA_CONF} is missing (no alsa-lib data files)")

    def make(name: str = "mynatest") -> FilePcm:
        folder = tmp_path / name
        folder.mkdir()
        pattern = str(folder / "out-%r.raw")
        rc = folder / "asoundrc"
        rc.write_text(
            f'pcm.{name} {{\n    type file\n    slave.pcm "null"\n'
            f'    file "{pattern}"\n    format "raw"\n}}\n',
            encoding="utf-8",
        )
        monkeypatch.setenv("ALSA_CONFIG_PATH", f"{ALSA_CONF}:{rc}")
        return FilePcm(device=name, pattern=pattern)

    return make


@pytest.fixture
def file_pcm(make_file_pcm: Callable[[str], FilePcm]) -> FilePcm:
    """One file PCM named ``mynatest``."""
    return make_file_pcm("mynatest")
