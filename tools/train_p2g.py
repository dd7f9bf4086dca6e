"""Train the reverse (phonemes → letters) model that rescores G2P candidates: see tools/g2p/p2g.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from g2p.p2g import main

if __name__ == "__main__":
    sys.exit(main())
