"""The data card: ``DATACARD.md`` and ``datacard.json`` from what is on disk under the corpus folder."""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from .coverage import Coverage
from .generate import read_runs
from .metadata import load_done
from .speakers import SPEAKERS
from .text import SOURCES

FULL_RUN = ("python tools/make_corpus.py --out corpus/ --jobs 2 --hours 3 --speakers joe && "
            "python tools/make_corpus.py --out corpus/ --jobs 2 --hours 0.34 --speakers "
            "kokoro-jf_alpha,kokoro-jf_gongitsune,kokoro-jf_nezumi,kokoro-jf_tebukuro,kokoro-jm_kumo,"
            "flite-slt,flite-kal16,flite-rms,flite-awb,festival-kal,festival-ked,festival-slt-hts")


def build(out: Path, command: str, excluded: int, pool_size: int) -> dict[str, Any]:
    """Gather hours, coverage, provenance and throughput of every speaker folder under ``out``."""
    speakers: dict[str, Any] = {}
    coverage_all = Coverage()
    coverage_joe = Coverage()
    per_source: dict[str, int] = defaultdict(int)
    texts_seen: set[str] = set()
    for folder in sorted(p for p in out.iterdir() if (p / "metadata.jsonl").is_file()):
        records = list(load_done(folder, rewrite=False).values())
        spec = SPEAKERS.get(folder.name)
        runs = read_runs(folder)
        audio = sum(r.seconds for r in records)
        synth = sum(r.synth_seconds for r in records)
        speakers[folder.name] = {
            **(spec.to_dict() if spec else {"name": folder.name}),
            "utterances": len(records),
            "hours": round(audio / 3600, 4),
            "audio_seconds": round(audio, 2),
            "mean_seconds": round(audio / len(records), 2) if records else 0.0,
            "rtf_one_worker": round(synth / audio, 4) if audio else None,
            "throughput_last_run": runs[-1] if runs else None,
            "commands": sorted({r.get("command", "") for r in runs} - {""}),
            "has_durations": bool(records) and all(r.durations is not None for r in records),
        }
        for r in records:
            coverage_all.add(r.phonemes)
            if folder.name == "joe":
                coverage_joe.add(r.phonemes)
            if r.id not in texts_seen:
                texts_seen.add(r.id)
                per_source[r.source] += 1
    return {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command,
        "full_run_command": FULL_RUN,
        "sample_rate": 22050,
        "total_hours": round(sum(s["audio_seconds"] for s in speakers.values()) / 3600, 4),
        "speakers": speakers,
        "sources": {name: {**info, "distinct_texts_used": per_source.get(name, 0)} for name, info in SOURCES.items()},
        "pool": {"size": pool_size, "excluded_as_eval": excluded},
        "coverage_joe": coverage_joe.summary(),
        "coverage_all": coverage_all.summary(),
        "notes": [
            "Eval lines (shared/eval/sentences.txt and normalization.tsv, written and spoken forms) are excluded "
            "by construction: candidates whose normalized key equals or contains an eval key are dropped.",
            "Joe's durations are frames (hop 256) per Piper graph id (symbols in piper_symbols: ^ _ p _ ... $, "
            "espeak-ng IPA); aligning them to Myna's ARPAbet inventory is a later step.",
            "ARPAbet phonemes come from Myna's frontend (lexicon + neural G2P) on the written text; the engines read "
            "the Myna-normalized spoken words (the 'speakable' field), so audio and phonemes say the same words, "
            "but each engine's own G2P decides the pronunciation it speaks.",
            "Kokoro, flite and Festival audio is resampled to 22050 Hz mono (scipy resample_poly). Levels are left "
            "as each engine makes them (Piper peaks at 1.0 per sentence; flite kal16 is ~12 dB quieter than slt): "
            "normalize loudness in the training data loader if needed.",
            "The carrier sentences use CMU dictionary words unfiltered for frequency or offensiveness; review "
            "them (source 'carrier') before a release of the data.",
        ],
    }


def _md(card: dict[str, Any]) -> str:
    lines = ["# Myna training corpus — data card", "", f"Generated {card['generated']} by `{card['command']}`.", "",
             f"Total: {card['total_hours']} h at {card['sample_rate']} Hz mono, 16-bit PCM.", "",
             "## Speakers", "",
             "| speaker | engine / voice | utterances | hours | RTF (1 worker) | throughput last run (audio s / wall s, jobs) | licence | package |",
             "|---|---|---|---|---|---|---|---|"]
    for name, s in card["speakers"].items():
        run = s.get("throughput_last_run") or {}
        tp = f"{run.get('throughput', '')} ({run.get('jobs', '')})" if run else ""
        lines.append(f"| {name} | {s.get('engine', '')} / {s.get('voice', '')} | {s['utterances']} | {s['hours']} | "
                     f"{s['rtf_one_worker']} | {tp} | {s.get('licence', '')} | {s.get('provenance', '')} |")
    lines += ["", "Commands that made each speaker's audio:", ""]
    for name, s in card["speakers"].items():
        lines += [f"- {name}: " + "; ".join(f"`{c}`" for c in s.get("commands", []))]
    lines += ["", "## Text sources", "", "| source | texts used | licence | provenance | description |", "|---|---|---|---|---|"]
    for name, src in card["sources"].items():
        lines.append(f"| {name} | {src['distinct_texts_used']} | {src['licence']} | {src['provenance']} | {src['description']} |")
    lines += ["", f"Pool: {card['pool']['size']} texts; {card['pool']['excluded_as_eval']} candidates dropped as eval lines.", ""]
    for label, key in (("Joe", "coverage_joe"), ("All speakers", "coverage_all")):
        c = card[key]
        lines += [f"## Coverage ({label}, ARPAbet from Myna's frontend)", "",
                  f"- phonemes: {c['phonemes_seen']}/{c['phonemes_possible']} (missing: {', '.join(c['phonemes_missing']) or 'none'})",
                  f"- stressed symbols: {c['stressed_seen']}/{c['stressed_possible']}",
                  f"- diphones (stress-free, within clauses): {c['diphones_seen']}/{c['diphones_possible']} "
                  f"({c['diphones_seen_5_plus']} seen 5+ times)",
                  f"- rarest phonemes: {', '.join(f'{p} {n}' for p, n in c['rarest_phonemes'])}", ""]
    lines += ["## Full run (document; takes hours on 2 cores)", "", "```", card["full_run_command"], "```", "",
              "## Layout", "", "`<speaker>/wavs/<id>.wav`, `<speaker>/metadata.jsonl` (id, speaker, source, written, spoken, "
              "speakable, phonemes, samples, sample_rate, synth_seconds; joe also piper_symbols and durations), "
              "`<speaker>/runs.jsonl` (throughput of each run).", "", "## Notes", ""]
    lines += [f"- {n}" for n in card["notes"]]
    return "\n".join(lines) + "\n"


def write(out: Path, card: dict[str, Any]) -> None:
    """Write ``datacard.json`` and ``DATACARD.md`` atomically."""
    for name, content in (("datacard.json", json.dumps(card, indent=2, ensure_ascii=False) + "\n"),
                          ("DATACARD.md", _md(card))):
        tmp = out / f".{name}.tmp{os.getpid()}"
        tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, out / name)
