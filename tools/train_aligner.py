"""Train the voice aligner and write phoneme durations (workstation, torch): see tools/voice/aligner.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from voice.aligner import main

if __name__ == "__main__":
    sys.exit(main())
