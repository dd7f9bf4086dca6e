"""`myna`: the client command line — say, voices, board, status, stop."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any, Iterator, Sequence

from . import __version__
from .api import const
from .config import DaemonConfig, Priority, SpeakOptions
from .errors import DaemonUnavailable, MynaError


class SocketClient:
    """A blocking JSON-lines client for the daemon's Unix socket."""

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(path)
        except OSError as exc:
            self._sock.close()
            raise DaemonUnavailable(f"cannot reach mynad at {path}: {exc.strerror or exc}") from None
        self._file = self._sock.makefile("rwb")
        self._next = 0

    def close(self) -> None:
        """Close the connection."""
        self._file.close()
        self._sock.close()

    def request(self, op: str, **fields: Any) -> str:
        """Send one request; return its id."""
        self._next += 1
        req_id = f"cli-{self._next}"
        line = json.dumps({"id": req_id, "op": op, **fields}, ensure_ascii=False) + "\n"
        self._file.write(line.encode("utf-8"))
        self._file.flush()
        return req_id

    def events(self) -> Iterator[dict[str, Any]]:
        """Yield event objects as they arrive."""
        for raw in self._file:
            yield json.loads(raw)

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send a request and return its result (or raise on its error)."""
        req_id = self.request(op, **fields)
        for event in self.events():
            if event.get("id") != req_id:
                continue
            if event.get("event") == "error":
                raise _remote_error(event)
            return event
        raise DaemonUnavailable("mynad closed the connection")


def _remote_error(event: dict[str, Any]) -> MynaError:
    err = MynaError(str(event.get("message", "error")))
    err.code = str(event.get("code", "Internal"))
    return err


def _socket_path(args: argparse.Namespace) -> str:
    return args.socket or os.environ.get("MYNA_SOCKET") or const.DEFAULT_SOCKET_PATH


def _cmd_say(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == "-" else args.text
    raw: dict[str, Any] = {"priority": args.priority}
    for name in ("voice", "rate", "pitch", "volume"):
        if getattr(args, name) is not None:
            raw[name] = getattr(args, name)
    if args.ssml:
        raw["ssml"] = True
    options = SpeakOptions.from_dict(raw)
    if args.local or args.output:
        return _say_local(args, text, options)
    client = SocketClient(_socket_path(args))
    try:
        queued = client.call("speak", text=text, options=raw)
        job = queued.get("job")
        print(job)
        if args.no_wait:
            return 0
        for event in client.events():
            if event.get("job") == job and event.get("event") == "finished":
                return 0 if event.get("outcome") == "done" else 1
        return 1
    finally:
        client.close()


def _say_local(args: argparse.Namespace, text: str, options: SpeakOptions) -> int:
    """Synthesize in this process with the same engine the daemon uses."""
    from .app import build_core
    from .engine import EventKind, JobEvent, Outcome

    config = _local_config(args)
    sink = f"wav:{args.output}" if args.output else None
    core = build_core(config, sink_uri=sink)
    finished: dict[int, Outcome] = {}
    done = threading.Condition()

    def on_event(event: JobEvent) -> None:
        # May fire before speak() returns (a dropped notification), so record by id.
        if event.kind is EventKind.FINISHED and event.outcome is not None:
            with done:
                finished[event.job_id] = event.outcome
                done.notify_all()

    try:
        core.engine.subscribe(on_event)
        job = core.engine.speak(text, options)
        with done:
            done.wait_for(lambda: job in finished)
    finally:
        core.close()
    outcome = finished.get(job)
    if args.output:
        print(args.output)
    return 0 if outcome is Outcome.DONE else 1


def _local_config(args: argparse.Namespace) -> DaemonConfig:
    config = DaemonConfig.load(Path(args.config))
    return config.with_overrides(board=args.board, voice_dirs=tuple(args.voices) if args.voices else None)


def _cmd_voices(args: argparse.Namespace) -> int:
    if args.local:
        from .app import build_core

        core = build_core(_local_config(args), sink_uri="null")
        try:
            voices = [{"id": v.id, "name": v.name, "language": v.language} for v in core.engine.voices()]
        finally:
            core.close()
    else:
        client = SocketClient(_socket_path(args))
        try:
            voices = client.call("voices")["voices"]
        finally:
            client.close()
    for voice in voices:
        print(f"{voice['id']}\t{voice['language']}\t{voice['name']}")
    return 0


def _cmd_board(args: argparse.Namespace) -> int:
    from .app import detect_board

    detection = detect_board(_local_config(args), Path(args.root), arch=args.arch)
    profile = detection.profile
    print(f"board:   {profile.name}")
    print(f"why:     {detection.reason}")
    for key, value in profile.to_dict().items():
        if key not in ("name", "match"):
            print(f"{key + ':':<16}{value}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    client = SocketClient(_socket_path(args))
    try:
        status = client.call("status")["status"]
    finally:
        client.close()
    for key in sorted(status):
        print(f"{key}: {status[key]}")
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    client = SocketClient(_socket_path(args))
    try:
        if args.job is None:
            client.call("stop", all=True)
            return 0
        result = client.call("stop", job=args.job)
    finally:
        client.close()
    return 0 if result.get("stopped") else 1


def _lines(text: str) -> Iterator[str]:
    """The argument, or each line of stdin for '-'."""
    if text == "-":
        for line in sys.stdin:
            yield line.rstrip("\n")
    else:
        yield text


def _cmd_normalize(args: argparse.Namespace) -> int:
    from .text.normalize import normalizer_for

    normalizer = normalizer_for(args.language)
    for line in _lines(args.text):
        print(normalizer.spoken(line))
    return 0


def _cmd_phonemize(args: argparse.Namespace) -> int:
    from .text.english import EnglishFrontend

    frontend = EnglishFrontend.load()
    for line in _lines(args.text):
        words = frontend.words(line, ssml=args.ssml)
        if args.verbose:
            for word in words:
                print(f"{word.written}\t{word.spoken}\t{' '.join(word.phonemes)}")
        else:
            # Words are separated by " | " so multi-phoneme words stay readable.
            print(" | ".join(" ".join(w.phonemes) for w in words))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The `myna` argument parser."""
    parser = argparse.ArgumentParser(prog="myna", description="Talk to the Myna text-to-speech daemon.")
    parser.add_argument("--version", action="version", version=f"myna {__version__}")
    parser.add_argument("--socket", help=f"daemon socket (default $MYNA_SOCKET or {const.DEFAULT_SOCKET_PATH})")
    parser.add_argument("--config", default=const.DEFAULT_CONFIG_PATH, help="config for --local and board")
    parser.add_argument("--board", help="board profile for --local (skips detection)")
    parser.add_argument("--voices", type=Path, action="append", help="voice pack directory for --local")
    sub = parser.add_subparsers(dest="command", required=True)

    say = sub.add_parser("say", help="speak a text ('-' reads stdin)")
    say.add_argument("text")
    say.add_argument("-v", "--voice")
    say.add_argument("--priority", default=Priority.TEXT.value, choices=[p.value for p in Priority])
    say.add_argument("--rate", type=float)
    say.add_argument("--pitch", type=float)
    say.add_argument("--volume", type=float)
    say.add_argument("--ssml", action="store_true", help="the text is SSML")
    say.add_argument("-o", "--output", help="write a WAV file instead of playing (in-process)")
    say.add_argument("--local", action="store_true", help="synthesize in this process, no daemon")
    say.add_argument("--no-wait", action="store_true", help="return once queued")
    say.set_defaults(func=_cmd_say)

    voices = sub.add_parser("voices", help="list installed voices")
    voices.add_argument("--local", action="store_true", help="read the voice packs here, no daemon")
    voices.set_defaults(func=_cmd_voices)

    board = sub.add_parser("board", help="show the detected board profile and why it matched")
    board.add_argument("--root", default="/", help="read /proc and the device tree under this root")
    board.add_argument("--arch", help="architecture to assume (with --root: another machine's tree)")
    board.set_defaults(func=_cmd_board)

    status = sub.add_parser("status", help="show the daemon's status")
    status.set_defaults(func=_cmd_status)

    normalize = sub.add_parser("normalize", help="print the spoken form of a text ('-': each stdin line)")
    normalize.add_argument("text")
    normalize.add_argument("--language", default="en-US")
    normalize.set_defaults(func=_cmd_normalize)

    phonemize = sub.add_parser("phonemize", help="print the phonemes, words separated by ' | ' ('-': stdin lines)")
    phonemize.add_argument("text")
    phonemize.add_argument("--ssml", action="store_true", help="the text is SSML")
    phonemize.add_argument("-v", "--verbose", action="store_true", help="one word per line: written, spoken, phonemes")
    phonemize.set_defaults(func=_cmd_phonemize)

    stop = sub.add_parser("stop", help="stop one job, or everything")
    stop.add_argument("job", nargs="?", type=int)
    stop.set_defaults(func=_cmd_stop)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `myna`."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except MynaError as exc:
        print(f"myna: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
