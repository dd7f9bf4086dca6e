"""Voice-bundle signing keys: create a pair, or print the public line that devices trust.

    python tools/voice_keys.py generate --out keys/            # keys/myna-voice-signing.{key,pub}
    python tools/voice_keys.py public keys/myna-voice-signing.key > vendor.pub
    # on each device (provisioning): install -m644 vendor.pub /etc/myna/trusted_keys/

The private key (PKCS#8 PEM, mode 0600) never leaves the signing workstation; a device trusts every
``*.pub`` in ``/etc/myna/trusted_keys/`` and refuses bundles signed by anything else.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

_TOOLS = Path(__file__).resolve().parent
# Run from a checkout without installing: the workbench lives under tools/, the runtime under daemon/.
for _path in (_TOOLS, _TOOLS.parent / "daemon"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from myna.bundles import parse_public_key_line, public_key_line  # noqa: E402
from myna.errors import MynaError  # noqa: E402
from voice.signing import SigningKeyError, generate, public_line  # noqa: E402


def _cmd_generate(args: argparse.Namespace) -> int:
    pair = generate(args.out, args.name, args.comment)
    print(f"private key: {pair.private} (mode 0600; keep it on this workstation)")
    print(f"public key:  {pair.public} (install on devices as /etc/myna/trusted_keys/{pair.public.name})")
    print(f"key id:      {pair.key_id}")
    return 0


def _cmd_public(args: argparse.Namespace) -> int:
    path: Path = args.keyfile
    if path.suffix == ".pub":
        # Already a public key: check it and print it normalised.
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
        key = parse_public_key_line(lines[0] if lines else "")
        print(public_key_line(key.raw, args.comment if args.comment is not None else key.comment))
    else:
        print(public_line(path, args.comment))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the subcommand and run it; one line on stderr and exit 2 on a key error."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="create a signing key pair (refuses to overwrite)")
    gen.add_argument("--out", type=Path, required=True, help="folder for NAME.key and NAME.pub")
    gen.add_argument("--name", default="myna-voice-signing", help="file name stem (default %(default)s)")
    gen.add_argument("--comment", help="text after the key on the .pub line (default: NAME)")
    gen.set_defaults(func=_cmd_generate)
    pub = sub.add_parser("public", help="print the .pub line of a key for /etc/myna/trusted_keys/")
    pub.add_argument("keyfile", type=Path, help="a private key from 'generate' (or a .pub to normalise)")
    pub.add_argument("--comment", help="comment to print after the key")
    pub.set_defaults(func=_cmd_public)
    args = ap.parse_args(argv)
    try:
        return int(args.func(args))
    except (SigningKeyError, OSError) as exc:
        print(f"voice_keys: {exc}", file=sys.stderr)
        return 2
    except MynaError as exc:
        print(f"voice_keys: {args.keyfile}: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
