"""Build the training corpus: texts → joe (teacher, with durations) and extra speakers → wavs + data card.

    python tools/make_corpus.py --out corpus/ --hours 3 --speakers joe --jobs 2
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "daemon")]

from workbench.corpus import datacard, text  # noqa: E402
from workbench.corpus.generate import Phonemizer, generate_speaker  # noqa: E402
from workbench.corpus.speakers import SPEAKERS, available  # noqa: E402

_LOGGER = logging.getLogger("make_corpus")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the text pool, synthesize each speaker, write the data card."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("corpus"), help="output folder (default corpus/, gitignored)")
    parser.add_argument("--hours", type=float, default=0.05, help="target hours of audio per speaker")
    parser.add_argument("--speakers", default="joe", help=f"comma-separated, or 'all': {', '.join(SPEAKERS)}")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (one engine each)")
    parser.add_argument("--eval-dir", type=Path, default=None, help="eval set to exclude (default ../shared/eval)")
    parser.add_argument("--pool-size", type=int, default=text.POOL_SIZE, help="texts in the pool (keep fixed to resume)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--card-only", action="store_true", help="only rewrite the data card")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    names = list(SPEAKERS) if args.speakers == "all" else [s.strip() for s in args.speakers.split(",") if s.strip()]
    unknown = [n for n in names if n not in SPEAKERS]
    if unknown:
        parser.error(f"unknown speakers {unknown}; known: {', '.join(SPEAKERS)}")
    missing = {n: why for n in names if (why := available(SPEAKERS[n]))}
    if missing:
        parser.error("; ".join(f"{n}: {why}" for n, why in missing.items()))

    excluder = text.Excluder(text.eval_lines(args.eval_dir or text.default_eval_dir()))
    pool, dropped = text.build_pool(excluder, size=args.pool_size)
    _LOGGER.info("text pool: %d texts, %d eval matches dropped", len(pool), dropped)
    args.out.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python", "tools/make_corpus.py", *(sys.argv[1:] if argv is None else argv)])
    if not args.card_only:
        phonemize = Phonemizer()
        for name in names:
            stats = generate_speaker(SPEAKERS[name], text.speaker_order(pool, name), args.out, args.hours * 3600,
                                     args.jobs, phonemize, progress=not args.no_progress, command=command)
            _LOGGER.info("%s: %d new utterances, %.1f s audio in %.1f s wall (%.2f audio s / wall s, %d jobs), %d kept",
                         name, stats.utterances, stats.audio_seconds, stats.wall_seconds, stats.throughput,
                         stats.jobs, stats.skipped)
    card = datacard.build(args.out, command, dropped, len(pool))
    datacard.write(args.out, card)
    _LOGGER.info("wrote %s", args.out / "DATACARD.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
