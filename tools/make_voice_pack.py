"""Build a trained voice pack (INT8 graphs per tier, adapters, manifest, model card) from acoustic and vocoder checkpoints.

    .venv/bin/python tools/make_voice_pack.py --pack-id myna-en --out models/myna-en --features out/features \\
        --datacard /work/corpus-run/datacard.json \\
        --tier small=out/acoustic-small/best.pt,out/vocoder-small/final.pt --default-voice joe

Every ``--tier`` must use an acoustic checkpoint with the same speaker table (see ``tools/voice/pack.py``).

``--precision float32`` builds the float32 twin of the pack (same checkpoints, calibration and construction
code, no quantization), the reference INT8 is measured against; write it outside models/:

    .venv/bin/python tools/make_voice_pack.py --precision float32 --pack-id myna-en-float --out out/myna-en-float ...

``--int8-fc-per-channel --int8-ranges mse --int8-equalize 0.5`` lower INT8's error against that twin (per-row FC
weight scales, least-squared-error activation ranges, cross-layer channel equalization); without them the
INT8 graphs are the shipped bytes.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

_TOOLS = Path(__file__).resolve().parent
# Run from a checkout without installing: the workbench lives under tools/, the runtime under daemon/.
for _path in (_TOOLS, _TOOLS.parent / "daemon"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import torch  # noqa: E402
from voice.pack import PackError, TierSource, build_voice_pack  # noqa: E402
from workbench.tflite_builder import PRECISIONS, RANGE_METHODS, QuantOptions  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Parse flags, build the pack; exit 2 with one line on stderr when the inputs do not fit together."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack-id", default="myna-en")
    ap.add_argument("--out", type=Path, default=None, help="pack folder (default models/<pack-id>)")
    ap.add_argument("--features", type=Path, default=Path("out/features"), help="calibration and INT8-check data")
    ap.add_argument("--datacard", type=Path, default=Path("corpus/datacard.json"),
                    help="the corpus's datacard.json (hours and licences per speaker)")
    ap.add_argument("--tier", action="append", required=True, metavar="TIER=ACOUSTIC.pt,VOCODER.pt",
                    help="one per tier, e.g. small=out/acoustic-small/best.pt,out/vocoder-small/final.pt")
    ap.add_argument("--default-voice", default="joe")
    ap.add_argument("--voices", default=None, help="comma-separated speaker names (default: all of the acoustic checkpoint)")
    ap.add_argument("--licence", default="Apache-2.0", help="licence of the weights (SPDX)")
    ap.add_argument("--calib-chunks", type=int, default=300, help="acoustic calibration utterances")
    ap.add_argument("--vocoder-windows", type=int, default=256, help="vocoder calibration windows")
    ap.add_argument("--measure-windows", type=int, default=32, help="vocoder INT8-vs-float windows")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: the same bytes on every rebuild)")
    ap.add_argument("--precision", choices=PRECISIONS, default="int8",
                    help="int8 (the shipped graphs) or float32 (their unquantized twins, for measuring INT8)")
    ap.add_argument("--int8-fc-per-channel", action="store_true",
                    help="INT8: one weight scale per FULLY_CONNECTED output row (default: one per tensor, the shipped bytes)")
    ap.add_argument("--int8-ranges", choices=RANGE_METHODS, default="minmax",
                    help="INT8 activation ranges: minmax (shipped) or mse (least squared error clipping over the calibration batch)")
    ap.add_argument("--int8-equalize", type=float, default=0.0, metavar="ALPHA",
                    help="INT8: cross-layer channel equalization inside the blocks, exponent 0..1 (default 0: off)")
    ap.add_argument("--training-note", action="append", default=[], metavar="TEXT",
                    help="a line of run history for the model card's Training section (repeatable)")
    args = ap.parse_args(argv)
    if args.precision != "int8" and (args.out is None or args.out.resolve().is_relative_to((_TOOLS.parent / "models").resolve())):
        ap.error(f"--precision {args.precision} builds a reference pack, not one to ship: give an --out outside models/")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    try:
        tiers = [TierSource.parse(t) for t in args.tier]
        out = build_voice_pack(
            args.pack_id, args.out or Path("models") / args.pack_id, args.features, tiers, args.datacard,
            default_voice=args.default_voice, voice_ids=args.voices.split(",") if args.voices else None,
            licence=args.licence, calib_chunks=args.calib_chunks, vocoder_windows=args.vocoder_windows,
            measure_windows=args.measure_windows, precision=args.precision,
            options=QuantOptions(per_channel_fc=args.int8_fc_per_channel, range_method=args.int8_ranges,
                                 equalize=args.int8_equalize),
            training_notes=args.training_note)
    except PackError as exc:
        print(f"make_voice_pack: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
