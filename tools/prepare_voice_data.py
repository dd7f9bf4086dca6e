"""Extract voice-training features from a corpus (workstation): see tools/voice/features.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from voice.features import main

if __name__ == "__main__":
    sys.exit(main())
