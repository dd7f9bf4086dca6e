"""Attach the beam decoder (phoneme LM + reverse-model rescorer) to the G2P model: see tools/g2p/decoder.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from g2p.decoder import main

if __name__ == "__main__":
    sys.exit(main())
