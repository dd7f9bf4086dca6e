"""Train the neural G2P model (workstation, torch): see tools/g2p/train.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from g2p.train import main

if __name__ == "__main__":
    sys.exit(main())
