"""Push a signed voice bundle to devices: copy it over, call ``InstallVoice``, report one line per target.

    python tools/push_voice.py anna.mynavoice --to local --to pi@car-12 --to 10.0.0.7 [--dry-run]

TARGET is ``local`` (this machine's daemon, called over D-Bus directly) or ``[user@]host``, reached
with the OpenSSH client (``ssh -o BatchMode=yes``: keys or an agent, never a password prompt). For a
host, one ssh session streams the bundle into a fresh file under ``--stage-dir`` on the device
(default /var/lib/myna/incoming: the sandboxed daemon has a private /tmp and no /home), calls
``busctl call org.myna.Speech1 … InstallVoice s FILE`` on the device's system bus and deletes the
file again, whatever the answer. The remote user must be root or in group ``myna-admin`` (the
D-Bus policy in systemd/). Output, one line per target, in the order given::

    local: installed anna
    pi@car-12: failed: ssh: connect to host car-12 port 22: Connection timed out

Exit status 0 when every target installed the voice (pushing the same bundle again is a no-op
success on the device), 1 when any target failed, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

_TOOLS = Path(__file__).resolve().parent
# Run from a checkout without installing: the runtime lives under daemon/.
if str(_TOOLS.parent / "daemon") not in sys.path:
    sys.path.insert(0, str(_TOOLS.parent / "daemon"))

from myna.api import const  # noqa: E402
from myna.bundles import BundleManifest, Signature, read_bundle_file, unpack_bundle  # noqa: E402
from myna.errors import MynaError  # noqa: E402

LOCAL = "local"
# [user@]host: no leading "-" (ssh would read it as an option), no spaces or shell characters.
_TARGET = re.compile(r"(?:[A-Za-z0-9._][A-Za-z0-9._-]*@)?[A-Za-z0-9_\[][A-Za-z0-9._:%\[\]-]*")
_BUSCTL_REPLY = re.compile(r'^s "(?P<id>[^"]*)"$')
DEFAULT_CONNECT_TIMEOUT = 10
DEFAULT_TIMEOUT = 120.0


class PushFailed(Exception):
    """One target did not install the bundle; the message is the one-line reason."""


@dataclass(frozen=True)
class Bundle:
    """What push_voice knows of the bundle before any device has seen it."""

    path: Path
    """Absolute path of the bundle file."""
    data: bytes
    """Its bytes (streamed to remote targets)."""
    voice_id: str
    """The voice it installs."""


@dataclass(frozen=True)
class Options:
    """How to reach the targets."""

    bus: str
    """``system`` or ``session``: the bus InstallVoice is called on (here, or on the device)."""
    ssh: str
    """The ssh program."""
    ssh_options: tuple[str, ...]
    """Extra ``-o`` options for ssh, e.g. ``Port=2222``."""
    stage_dir: str | None
    """Where the bundle is staged for the daemon; None for ``local`` on the session bus (path as is)."""
    remote_stage_dir: str
    """Where the bundle is staged on a remote device."""
    timeout: float
    """Seconds one target may take."""


def one_line(text: str) -> str:
    """The last non-empty line of ``text``, whitespace squeezed: the reason a tool gave."""
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def load_bundle(path: Path) -> Bundle:
    """Read and check the bundle as far as possible without the device's keys: container, manifest, signature present."""
    absolute = path.resolve()
    data = read_bundle_file(absolute)
    files = unpack_bundle(data)
    try:
        manifest = BundleManifest.from_dict(json.loads(files.manifest.decode("utf-8")))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PushFailed(f"bundle.json is not valid JSON: {exc}") from None
    if files.signature is None:
        raise PushFailed("the bundle is not signed (devices refuse unsigned bundles)")
    Signature.from_bytes(files.signature)
    return Bundle(absolute, data, manifest.voice_id)


# ------------------------------------------------------------------------------------ local


async def _call_install(bus_name: str, path: str, timeout: float) -> str:
    from dbus_fast import BusType, Message, MessageType
    from dbus_fast.aio import MessageBus

    bus_type = BusType.SESSION if bus_name == "session" else BusType.SYSTEM
    try:
        bus = await asyncio.wait_for(MessageBus(bus_type=bus_type).connect(), timeout)
    except Exception as exc:
        raise PushFailed(f"cannot reach the D-Bus {bus_name} bus: {exc}") from None
    try:
        message = Message(
            destination=const.BUS_NAME, path=const.OBJECT_PATH, interface=const.INTERFACE,
            member="InstallVoice", signature="s", body=[path],
        )  # fmt: skip
        try:
            reply = await asyncio.wait_for(bus.call(message), timeout)
        except asyncio.TimeoutError:
            raise PushFailed(f"InstallVoice did not answer within {timeout:g} s") from None
        assert reply is not None
        if reply.message_type is MessageType.ERROR:
            name = (reply.error_name or "error").removeprefix(const.ERROR_PREFIX)
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            raise PushFailed(one_line(f"{name}: {text}" if text else name))
        return str(reply.body[0])
    finally:
        bus.disconnect()


def push_local(bundle: Bundle, options: Options) -> str:
    """Call InstallVoice on this machine's daemon; stage a copy first where its sandbox needs one."""
    if options.stage_dir is None:
        return asyncio.run(_call_install(options.bus, str(bundle.path), options.timeout))
    try:
        fd, staged = tempfile.mkstemp(prefix="push-", suffix=".mynavoice", dir=options.stage_dir)
    except OSError as exc:
        raise PushFailed(f"cannot stage the bundle in {options.stage_dir}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(bundle.data)
        os.chmod(staged, 0o644)  # the daemon runs as user myna and must read it
        return asyncio.run(_call_install(options.bus, staged, options.timeout))
    finally:
        Path(staged).unlink(missing_ok=True)


# ------------------------------------------------------------------------------------ ssh


def remote_script(stage_dir: str, bus: str) -> str:
    """The POSIX sh the device runs: stage stdin into a fresh file, InstallVoice it, always delete it."""
    busctl = ["busctl"] + (["--user"] if bus == "session" else []) + [
        "call", const.BUS_NAME, const.OBJECT_PATH, const.INTERFACE, "InstallVoice", "s",
    ]  # fmt: skip
    template = shlex.quote(f"{stage_dir.rstrip('/')}/push-XXXXXXXX.mynavoice")
    return "\n".join([
        "set -eu",
        "umask 022",  # the daemon (user myna) must be able to read the staged file
        f"f=$(mktemp {template})",
        "trap 'rm -f \"$f\"' EXIT",
        'cat > "$f"',
        " ".join(shlex.quote(word) for word in busctl) + ' "$f"',
    ])  # fmt: skip


def ssh_command(target: str, options: Options) -> list[str]:
    """The ssh argv for ``target``: batch mode, a connect timeout, the caller's ``-o`` options, then the script."""
    argv = [options.ssh, "-T", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={DEFAULT_CONNECT_TIMEOUT}"]
    for extra in options.ssh_options:
        argv += ["-o", extra]
    # "--" ends ssh's options; the remote login shell may be anything, so the script runs under sh.
    return [*argv, "--", target, "sh -c " + shlex.quote(remote_script(options.remote_stage_dir, options.bus))]


def push_ssh(bundle: Bundle, target: str, options: Options) -> str:
    """Stream the bundle to ``target`` and install it there; return the voice id the device reports."""
    try:
        result = subprocess.run(
            ssh_command(target, options), input=bundle.data, capture_output=True, timeout=options.timeout, check=False,
        )  # fmt: skip
    except FileNotFoundError:
        raise PushFailed(f"{options.ssh}: not found (install the OpenSSH client)") from None
    except subprocess.TimeoutExpired:
        raise PushFailed(f"no answer within {options.timeout:g} s") from None
    out = result.stdout.decode("utf-8", "replace").strip()
    err = result.stderr.decode("utf-8", "replace")
    if result.returncode != 0:
        reason = one_line(err)
        if result.returncode == 255 and not reason.startswith("ssh"):
            reason = f"ssh: {reason}"
        raise PushFailed(reason.removeprefix("Call failed: "))
    match = _BUSCTL_REPLY.match(one_line(out))
    if match is None:
        raise PushFailed(f"unexpected reply from the device: {one_line(out)[:200]}")
    return match["id"]


# ------------------------------------------------------------------------------------ main


def push(bundle: Bundle, target: str, options: Options, dry_run: bool) -> str:
    """Install on one target; return the result text after ``TARGET: `` (raises PushFailed)."""
    if target != LOCAL and not _TARGET.fullmatch(target):
        raise PushFailed("not 'local' or [user@]host")
    if dry_run:
        if target == LOCAL:
            where = f"stage in {options.stage_dir}, " if options.stage_dir else ""
            return f"would install {bundle.voice_id} ({where}InstallVoice on the local {options.bus} bus)"
        return (f"would install {bundle.voice_id} (ssh, stage in {options.remote_stage_dir}, "
                f"InstallVoice on the device's {options.bus} bus)")
    voice_id = push_local(bundle, options) if target == LOCAL else push_ssh(bundle, target, options)
    if voice_id != bundle.voice_id:
        raise PushFailed(f"the device installed {voice_id!r}, not {bundle.voice_id!r}")
    return f"installed {voice_id}"


def main(argv: Sequence[str] | None = None) -> int:
    """Push to every target; one line each on stdout; 1 when any failed."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path, help="the .mynavoice file (tools/make_bundle.py)")
    ap.add_argument("--to", dest="targets", action="append", required=True, metavar="TARGET",
                    help="'local' or [user@]host; repeat for several devices")
    ap.add_argument("--dry-run", action="store_true", help="check the bundle and print what would be done")
    ap.add_argument("--bus", choices=("system", "session"), default="system",
                    help="bus of the daemon (default system; session for a desktop or test daemon)")
    ap.add_argument("--ssh-option", dest="ssh_options", action="append", default=[], metavar="OPT",
                    help="extra ssh -o option, e.g. Port=2222 or StrictHostKeyChecking=accept-new (repeatable)")
    ap.add_argument("--ssh", default="ssh", help="ssh program (default %(default)s)")
    ap.add_argument("--stage-dir", help=f"where the daemon can read the staged bundle (default on devices and for "
                                        f"local on the system bus: {const.INCOMING_DIR}; local on the session bus: none)")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per target (default %(default)g)")
    args = ap.parse_args(argv)
    local_stage = args.stage_dir or (const.INCOMING_DIR if args.bus == "system" else None)
    options = Options(args.bus, args.ssh, tuple(args.ssh_options), local_stage, args.stage_dir or const.INCOMING_DIR, args.timeout)
    try:
        bundle: Bundle | None = load_bundle(args.bundle)
        bundle_error = ""
    except (MynaError, PushFailed) as exc:
        bundle, bundle_error = None, getattr(exc, "message", None) or str(exc)
    failed = 0
    for target in args.targets:
        try:
            if bundle is None:
                raise PushFailed(f"bundle {args.bundle}: {bundle_error}")
            line = push(bundle, target, options, args.dry_run)
        except PushFailed as exc:
            failed += 1
            line = f"failed: {one_line(str(exc))}"
        except MynaError as exc:
            failed += 1
            line = f"failed: {one_line(exc.message)}"
        print(f"{target}: {line}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
