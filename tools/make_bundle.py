"""Make a signed voice bundle from an adapter ``.npz``, the base voice pack, the voice's metadata and consent.

    python tools/make_bundle.py --adapter anna.npz --base models/myna-en --voice-id anna --name Anna \\
        --language en-US --speaker anna-speaker.json --key keys/myna-voice-signing.key --out anna.mynavoice

``--speaker`` is JSON ``{"consent": {"given_by", "date", "statement"}, "provenance": {"tool",
"recordings", "recorded_seconds", "notes"}}`` (see myna.bundles.Speaker). The bundle holds the
adapter's tensors only, never the recordings. ``--unsigned`` writes a bundle devices refuse (tests).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

_TOOLS = Path(__file__).resolve().parent
# Run from a checkout without installing: the workbench lives under tools/, the runtime under daemon/.
for _path in (_TOOLS, _TOOLS.parent / "daemon"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from myna.bundles import Speaker  # noqa: E402
from myna.errors import MynaError  # noqa: E402
from voice.bundle import load_adapter_npz, make_bundle  # noqa: E402
from voice.signing import SigningKeyError, load_private  # noqa: E402


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, so a reader never sees half a bundle."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    """Parse flags, build and sign the bundle; exit 2 with one line on stderr when something does not fit."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapter", type=Path, required=True, help=".npz of float32 arrays keyed by graph input (e.g. speaker)")
    ap.add_argument("--base", type=Path, required=True, help="the base voice pack folder the adapter was made for")
    ap.add_argument("--voice-id", required=True, help="lowercase letters, digits, inner hyphens; at most 64")
    ap.add_argument("--name", required=True, help="human-readable name shown by ListVoices")
    ap.add_argument("--language", required=True, help="BCP-47 tag, e.g. en-US")
    ap.add_argument("--speaker", type=Path, required=True, help="JSON with the speaker's consent and provenance")
    key = ap.add_mutually_exclusive_group(required=True)
    key.add_argument("--key", type=Path, help="private signing key from tools/voice_keys.py generate")
    key.add_argument("--unsigned", action="store_true", help="write no signature (devices refuse it)")
    ap.add_argument("--created", help="UTC time YYYY-MM-DDTHH:MM:SSZ (default now; fix it for reproducible bytes)")
    ap.add_argument("--out", type=Path, required=True, help="the .mynavoice file to write")
    args = ap.parse_args(argv)
    try:
        speaker = Speaker.from_dict(json.loads(args.speaker.read_text(encoding="utf-8")), "speaker")
        data = make_bundle(
            adapter=load_adapter_npz(args.adapter),
            base_pack=args.base,
            voice_id=args.voice_id,
            name=args.name,
            language=args.language,
            consent=speaker.consent,
            provenance=speaker.provenance,
            key=None if args.unsigned else load_private(args.key),
            created=args.created,
        )
        write_atomically(args.out, data)
    except MynaError as exc:
        print(f"make_bundle: {exc.message}", file=sys.stderr)
        return 2
    except (SigningKeyError, OSError, ValueError) as exc:
        print(f"make_bundle: {exc}", file=sys.stderr)
        return 2
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
