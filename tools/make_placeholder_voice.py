"""Generate the deterministic placeholder voice pack (INT8 TFLite, no torch or TensorFlow needed)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
# Run from a checkout without installing: the workbench lives under tools/, the runtime under daemon/.
for _path in (_REPO / "tools", _REPO / "daemon"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from workbench.placeholder_voice import build_pack  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Write the pack to --out (default models/placeholder)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=_REPO / "models" / "placeholder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    build_pack(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
