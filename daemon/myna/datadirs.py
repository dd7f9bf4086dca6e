"""Where the data shipped with the runtime (board profiles, voice packs) lives in each install style."""

from __future__ import annotations

import sys
from pathlib import Path


def shipped_dir_candidates(name: str) -> list[Path]:
    """Places ``name`` (e.g. ``board_profiles``, ``models``) may be, most specific first.

    A source checkout or editable install has this module at ``<repo>/daemon/myna/`` and the data
    at ``<repo>/<name>``; a wheel installs it under ``<prefix>/share/myna/<name>``; a distribution
    package under ``/usr/share/myna/<name>``.
    """
    here = Path(__file__).resolve().parent
    candidates: list[Path] = []
    if here.parent.name == "daemon":
        candidates.append(here.parent.parent / name)
    candidates += [here / name, Path(sys.prefix) / "share" / "myna" / name, Path("/usr/share/myna") / name]
    return candidates


def shipped_dir(name: str) -> Path | None:
    """The first existing candidate directory for ``name``, or None."""
    return next((c for c in shipped_dir_candidates(name) if c.is_dir()), None)
