"""Print PER/WER of the shipped INT8 G2P model on the held-out split: see tools/g2p/evaluate.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from g2p.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
