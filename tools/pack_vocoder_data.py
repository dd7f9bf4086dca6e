"""Pack a subset of the corpus into one compact file for vocoder training elsewhere (a GPU machine).

    python tools/pack_vocoder_data.py --features out/features --corpus /work/corpus-run --out gpu/vocoder-data.npz \\
        --minutes joe=13 --minutes '*=0.5' --valid joe=24

``--minutes SPEAKER=M`` takes random training utterances of that speaker up to M minutes (``*`` = every
speaker not named); ``--valid SPEAKER=N`` adds the speaker's first N validation utterances.  The pack
holds 16-bit audio (delta + LZMA), the loudness gains and the aligner's alignments, so
``train_vocoder.py --pack FILE [--gta ACOUSTIC_CKPT]`` needs neither the corpus, soundfile nor librosa.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "daemon")]

from voice.features import read_index  # noqa: E402
from voice.vocoder_data import choose_rows, write_pack  # noqa: E402


def _pairs(values: list[str], cast: type) -> dict[str, Any]:
    out = {}
    for value in values:
        name, sep, amount = value.partition("=")
        if not sep or not name:
            raise SystemExit(f"expected SPEAKER=AMOUNT, got {value!r}")
        try:
            out[name] = cast(amount)
        except ValueError:
            raise SystemExit(f"{value!r}: {amount!r} is not a number") from None
    return out


def main(argv: list[str] | None = None) -> int:
    """Write the pack; print its size; return 0."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", type=Path, default=Path("out/features"))
    ap.add_argument("--corpus", type=Path, default=Path("corpus"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", action="append", default=[], metavar="SPEAKER=M")
    ap.add_argument("--valid", action="append", default=[], metavar="SPEAKER=N")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-frames", type=int, default=66, help="skip training utterances this short (a window's length)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    speakers = json.loads((args.features / "speakers.json").read_text())["speakers"]
    minutes, valid = _pairs(args.minutes, float), _pairs(args.valid, int)
    unknown = (set(minutes) | set(valid)) - set(speakers) - {"*"}
    if unknown:
        raise SystemExit(f"unknown speakers {sorted(unknown)}; the features have {speakers}")
    rows = choose_rows(read_index(args.features), minutes, valid, args.seed, args.min_frames)
    if not rows:
        raise SystemExit("nothing chosen: give --minutes")
    summary = write_pack(args.out, args.features, args.corpus, rows, speakers, progress=not args.no_progress)
    print(f"{args.out}: {summary['utterances']} utterances, {summary['seconds'] / 60:.1f} min, "
          f"{summary['bytes'] / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
