"""Clone a voice from a folder of recordings: fit a speaker adapter of the base model, report on it, optionally sign a bundle.

    .venv/bin/python tools/clone_voice.py --recordings ~/anna-recordings --voice-id anna --name Anna \\
        --acoustic out/acoustic-small/best.pt --vocoder out/vocoder-small/best.pt --aligner out/aligner/best.pt \\
        --base-pack models/myna-en --consent-by "Anna Example" --consent-date 2026-11-20 \\
        --consent-statement "Anna agrees to ..." --key keys/myna-voice-signing.key --out out/clones/anna

Recordings: WAV/FLAC/MP3/OGG at any rate, mono or stereo, with ``<name>.txt`` beside each file, a
``metadata.csv`` (``name|text``), a ``transcripts.tsv`` or a Sphinx ``transcription`` file; without
them ``--transcribe`` uses Whisper tiny.en offline.  Writes under ``--out``: ``<voice-id>.npz`` (the
adapter), ``<voice-id>-report.{md,json}``, ``<voice-id>-spectrograms.png``, ``<voice-id>-wavs/``,
``transcripts.tsv`` and, with ``--key``, the signed ``<voice-id>.mynavoice``.  How it works:
``tools/voice/clone.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

_TOOLS = Path(__file__).resolve().parent
# Run from a checkout without installing: the workbench lives under tools/, the runtime under daemon/.
for _path in (_TOOLS, _TOOLS.parent / "daemon"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # Whisper's weights come from a package; never from the network

DEFAULT_SENTENCES = Path("/work/shared/eval/sentences.txt")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recordings", type=Path, required=True, help="folder of the speaker's recordings (+ transcripts)")
    ap.add_argument("--acoustic", type=Path, default=Path("out/acoustic-small/best.pt"), help="base acoustic checkpoint")
    ap.add_argument("--vocoder", type=Path, default=Path("out/vocoder-small/best.pt"), help="base vocoder checkpoint")
    ap.add_argument("--aligner", type=Path, default=Path("out/aligner/best.pt"), help="base aligner checkpoint")
    ap.add_argument("--base-pack", type=Path, help="the voice pack built from these checkpoints (needed for a bundle)")
    ap.add_argument("--voice-id", required=True, help="lowercase letters, digits, inner hyphens; at most 64")
    ap.add_argument("--name", help="human-readable name (default: the voice id)")
    ap.add_argument("--language", default="en-US")
    ap.add_argument("--consent-by", help="who consented (the speaker or their representative)")
    ap.add_argument("--consent-date", help="YYYY-MM-DD")
    ap.add_argument("--consent-statement", help="what was consented to, in the words agreed")
    ap.add_argument("--key", type=Path, help="private signing key: also write a signed <voice-id>.mynavoice")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--transcribe", action="store_true", help="transcribe recordings without a transcript (Whisper tiny.en)")
    ap.add_argument("--max-minutes", type=float, default=10.0, help="time limit of the fitting")
    ap.add_argument("--steps", type=int, default=400, help="most fitting steps")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--pull", type=float, default=0.0,
                    help="L2 pull of the speaker vector towards its starting row (0: none); trades likeness for clarity")
    ap.add_argument("--stop-on", choices=("total", "mel"), default="total",
                    help="held-out loss for early stopping: the whole objective, or the mel loss alone")
    ap.add_argument("--init", choices=("nearest", "mean"), default="nearest",
                    help="start from the base speaker (or table mean) that fits best, or from the table mean")
    ap.add_argument("--rhythm", choices=("base", "clone"), default="base",
                    help="base: the encoder (durations, pitch) keeps the base voice's vector and the decoder gets a "
                         "timbre vector (clearer); clone: one vector for every graph")
    ap.add_argument("--pitch", choices=("match", "base"), default="match",
                    help="with --rhythm base: speak at the recordings' pitch level (match: the adapter gets a pitch_scale) "
                         "or at the base voice's (base)")
    ap.add_argument("--free-vectors", action="store_true",
                    help="let the vectors leave the span of the base speakers' rows (by default they stay in it, "
                         "so a clone fitted on one tier also speaks on the others)")
    ap.add_argument("--base-speaker", help="base voice of the baseline figures and, with --rhythm base, of the encoder "
                                           "(default: the pack's default voice)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-report", action="store_true", help="adapter only: no synthesis and no metrics")
    ap.add_argument("--no-asr", action="store_true", help="skip Whisper WER")
    ap.add_argument("--no-similarity", action="store_true", help="skip resemblyzer speaker similarity")
    ap.add_argument("--no-mcd", action="store_true", help="skip mel-cepstral distortion")
    ap.add_argument("--eval-sentences", type=Path, nargs="?", const=DEFAULT_SENTENCES, default=None,
                    help=f"also speak these sentences with the clone for the similarity figure (default {DEFAULT_SENTENCES})")
    ap.add_argument("--no-device-eval", action="store_true",
                    help="skip speaking the evaluation sentences through the device runtime with --base-pack's graphs")
    ap.add_argument("--eval-limit", type=int, default=20, help="at most N evaluation sentences")
    ap.add_argument("--created", help="UTC time YYYY-MM-DDTHH:MM:SSZ for the report and bundle (default now)")
    ap.add_argument("--no-progress", action="store_true")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Clone; exit 2 with one line on stderr when the input cannot make a voice."""
    args = parse_args(argv)
    from myna.errors import MynaError
    from voice import clone
    from voice.signing import SigningKeyError

    consent_fields = (args.consent_by, args.consent_date, args.consent_statement)
    if any(consent_fields) and not all(consent_fields):
        print("clone_voice: give all of --consent-by, --consent-date and --consent-statement", file=sys.stderr)
        return 2
    sentences: tuple[str, ...] = ()
    if args.eval_sentences is not None:
        from evaluate import read_sentences

        sentences = tuple(read_sentences(args.eval_sentences)[: max(0, args.eval_limit)])
    report = None if args.no_report else clone.ReportSettings(
        asr=not args.no_asr, similarity=not args.no_similarity, mcd=not args.no_mcd, threads=args.threads,
        eval_sentences=sentences, device=not args.no_device_eval)
    job = clone.CloneJob(
        recordings=args.recordings, acoustic=args.acoustic, vocoder=args.vocoder, aligner=args.aligner, out=args.out,
        voice_id=args.voice_id, name=args.name or args.voice_id, base_pack=args.base_pack, language=args.language,
        consent=clone.Consent(*consent_fields) if all(consent_fields) else None, key=args.key,
        transcribe=args.transcribe,
        fit=clone.FitSettings(steps=args.steps, lr=args.lr, max_minutes=args.max_minutes, init=args.init,
                              stop_on=args.stop_on, pull=args.pull, rhythm=args.rhythm, pitch=args.pitch,
                              span=not args.free_vectors),
        report=report, base_speaker=args.base_speaker, threads=args.threads,
        progress=not args.no_progress and sys.stderr.isatty(), created=args.created)
    try:
        result = clone.clone_voice(job)
    except clone.CloneError as exc:
        print(f"clone_voice: {exc}", file=sys.stderr)
        return 2
    except MynaError as exc:
        print(f"clone_voice: {exc.message}", file=sys.stderr)
        return 2
    except (SigningKeyError, OSError) as exc:
        print(f"clone_voice: {exc}", file=sys.stderr)
        return 2
    ev = result.get("evaluation", {})
    print(f"wrote {args.out / result['adapter']['file']} and {args.out / (args.voice_id + '-report.md')}"
          + (f" and {args.out / result['bundle']}" if result.get("bundle") else ""))
    if ev:
        print(f"held-out: similarity clone {ev.get('similarity_clone')} vs base {ev.get('similarity_base')}; "
              f"WER clone {ev.get('wer_clone')}; MCD clone {ev.get('mcd_clone_db')} dB vs base {ev.get('mcd_base_db')} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
