"""Benchmark the text frontend on one core: normalize + G2P words per second, load times, OOV rate.

Usage::

    python tools/bench_frontend.py [--words 50000] [--repeat 3] [--no-pin]

The corpus mixes car and appliance prompts with numbers, times and units and the prose of
``shared/eval/sentences.txt`` (or a built-in sample), varied so that the memo does not see the same
sentence over and over.  Load time (lexicon, neural model, normalizer) is reported apart from
throughput.  The process is pinned to CPU 0 and TFLite to one thread, as on a small board.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "daemon"))

from myna.text.g2p import G2P
from myna.text.lexicon import Lexicon, default_lexicon_path
from myna.text.units import Break, Token, Word, WordSpan

PROSE_FALLBACK = [
    "Turn left at the next intersection, then keep right.",
    "Traffic ahead is heavy; the new arrival time is a quarter past six.",
    "The washing machine has finished its cycle.",
    "Good morning. It is cloudy today with a chance of light rain this afternoon.",
    "The museum closes early on Sundays, so plan your visit for the morning.",
]
STREETS = ["Main Street", "Oak Avenue", "Kingsway", "Route 66", "Elm Dr.", "Harbour Road", "I-95", "the A40"]
PLACES = ["the airport", "Dr. Patel's office", "Central Station", "the charging hub", "St. Mary's Hospital", "home"]
TEMPLATES = [
    "In {d} miles, turn {lr} onto {street}.",
    "In {m} meters, take the {ord} exit toward {place}.",
    "Your ETA is {h}:{mm}. You will arrive at {place} in {n} minutes.",
    "Speed limit {s} km/h. You are driving {s2} mph.",
    "The outside temperature is {t}°C; tyre pressure is {p} psi.",
    "Battery at {pc}%. Range {r} km. The nearest charger is {d} miles away on {street}.",
    "Incoming call from +1 555 {a} {b}. Would you like to answer?",
    "The dishwasher will finish at {h}:{mm} pm. {n} minutes remaining.",
    "Oven preheated to {o} degrees. Timer set for {n} minutes.",
    "Recalculating. Traffic on {street} adds {n} minutes; new arrival {h}:{mm}.",
    "I read your message from {place} yesterday; will you read it again?",
    "Wind speeds of {s} km/h are expected; please close the windows.",
]


def corpus(words: int, seed: int = 7) -> list[str]:
    """Sentences totalling about ``words`` words: half prompts with fresh numbers, half prose."""
    path = REPO.parent / "shared" / "eval" / "sentences.txt"
    if not path.is_file():
        path = Path("/work/shared/eval/sentences.txt")
    prose = PROSE_FALLBACK
    if path.is_file():
        prose = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
    rng = random.Random(seed)
    out: list[str] = []
    count = 0
    while count < words:
        if rng.random() < 0.5:
            line = rng.choice(TEMPLATES).format(
                d=rng.choice(["0.5", "1", "2.3", "12", "half a"]), lr=rng.choice(["left", "right"]),
                street=rng.choice(STREETS), m=rng.randrange(50, 950, 50), ord=rng.choice(["1st", "2nd", "3rd", "4th"]),
                place=rng.choice(PLACES), h=rng.randint(1, 12), mm=f"{rng.randint(0, 59):02d}", n=rng.randint(2, 95),
                s=rng.choice([30, 50, 80, 100, 130]), s2=rng.randint(20, 90), t=rng.randint(-15, 38),
                p=rng.randint(28, 40), pc=rng.randint(1, 100), r=rng.randint(5, 480), a=f"{rng.randint(0, 999):03d}",
                b=f"{rng.randint(0, 9999):04d}", o=rng.randrange(150, 260, 10),
            )
        else:
            a, b = rng.choice(prose), rng.choice(prose)
            line = f"{a} {b}" if rng.random() < 0.3 else a
        out.append(line)
        count += len(line.split())
    return out


_FALLBACK_TOKEN = re.compile(r"([A-Za-z]+(?:'[A-Za-z]+)*)|([,;:.?!])")


def _fallback_tokens(text: str, base: int = 0) -> list[Token]:
    """Crude stand-in when the normalizer is missing: letters only, digits dropped."""
    out: list[Token] = []
    for m in _FALLBACK_TOKEN.finditer(text):
        if m.group(1):
            out.append(Word(m.group(1).lower(), WordSpan(base + m.start(), m.end() - m.start())))
        else:
            out.append(Break("." if m.group(2) in ".?!" else ","))
    return out


def pin_one_core() -> str:
    """Pin to CPU 0 where the OS allows; say what happened."""
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {0})
            return "pinned to CPU 0"
        except OSError as exc:
            return f"not pinned ({exc})"
    return "not pinned (no sched_setaffinity)"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=50_000, help="corpus size in written words")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes (median reported)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one core")
    args = parser.parse_args(argv)
    print("affinity:", "not pinned (--no-pin)" if args.no_pin else pin_one_core())

    t0 = time.perf_counter()
    lex_path = default_lexicon_path()
    if lex_path is None:
        print("no lexicon: run tools/build_lexicon.py", file=sys.stderr)
        return 1
    lexicon = Lexicon.load(lex_path)
    t_lex = time.perf_counter() - t0

    t0 = time.perf_counter()
    neural = None
    neural_note = "none"
    try:
        from myna.text.g2p_neural import NeuralG2P, default_model_dir

        neural = NeuralG2P(default_model_dir(), num_threads=1)
        neural_note = str(default_model_dir())
    except TypeError:
        neural = NeuralG2P(default_model_dir())  # an older signature without num_threads
        neural_note = str(default_model_dir())
    except Exception as exc:  # noqa: BLE001 - the bench reports whatever stopped the model
        neural_note = f"unavailable ({type(exc).__name__}: {str(exc)[:80]})"
    t_neural = time.perf_counter() - t0

    t0 = time.perf_counter()
    tokenize: Callable[[str, int], list[Token]]
    try:
        from myna.text.normalize import normalizer_for

        normalizer = normalizer_for("en")
        tokenize = normalizer.tokens
        norm_note = "myna.text.normalize"
    except ImportError as exc:
        tokenize = _fallback_tokens
        norm_note = f"FALLBACK regex tokenizer ({exc}); numbers are dropped"
    t_norm = time.perf_counter() - t0

    lines = corpus(args.words)
    print(f"lexicon: {lex_path} ({lex_path.stat().st_size / 1e6:.2f} MB, {len(lexicon)} words) load {t_lex * 1000:.0f} ms")
    print(f"neural G2P: {neural_note}; load {t_neural * 1000:.0f} ms")
    print(f"normalizer: {norm_note}; load {t_norm * 1000:.0f} ms")

    rates, norm_share, g2p_share, neural_share = [], [], [], []
    spoken = oov = spelled = 0
    g2p = G2P(lexicon, neural)
    for _ in range(args.repeat):
        g2p = G2P(lexicon, neural)  # fresh memo: every pass pays for its first lookups
        n_words = 0
        t_n = t_g = 0.0
        for line in lines:
            a = time.perf_counter()
            tokens = tokenize(line, 0)
            b = time.perf_counter()
            out = g2p.phonemize(tokens)
            c = time.perf_counter()
            t_n += b - a
            t_g += c - b
            n_words += sum(1 for t, _ in out if isinstance(t, Word))
        total = t_n + t_g
        rates.append(n_words / total)
        norm_share.append(t_n / total)
        g2p_share.append(t_g / total)
        neural_share.append(g2p.stats.neural_s / total)
        spoken = n_words
    # OOV by token (not memoized): words neither in the lexicon nor given explicitly.
    for line in lines:
        for token in tokenize(line, 0):
            if (isinstance(token, Word) and not token.spell and token.phonemes is None and len(token.text) > 1
                    and not lexicon.lookup(token.text)):
                oov += 1
                if g2p._derived(token.text) is None:
                    spelled += 1
    rate = statistics.median(rates)
    print(f"corpus: {len(lines)} lines, {spoken} spoken words per pass, {args.repeat} passes")
    print(f"throughput (normalize + G2P, one core): {rate:,.0f} words/s (passes: {', '.join(f'{r:,.0f}' for r in rates)})")
    print(f"time share: normalize {statistics.median(norm_share):.0%}, G2P {statistics.median(g2p_share):.0%}, "
          f"neural G2P {statistics.median(neural_share):.1%}")
    print(f"OOV: {oov / max(spoken, 1):.2%} of spoken words not in the lexicon; "
          f"{spelled / max(spoken, 1):.2%} beyond the suffix rules (to the neural model, else spelled)")
    top = sorted(g2p.stats.oov_words.items(), key=lambda kv: -kv[1])[:12]
    if top:
        print("OOV examples:", ", ".join(w for w, _ in top))
    print("target >= 2,000 words/s:", "met" if rate >= 2000 else "NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
