"""Count the phoneme n-gram the G2P beam search uses (workstation): see tools/g2p/lm.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from g2p.lm import main

if __name__ == "__main__":
    sys.exit(main())
