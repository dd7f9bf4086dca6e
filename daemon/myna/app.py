"""The one place that builds Myna: config → board → voices → engine → sink → front ends."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from . import __version__, sdnotify
from .api import const
from .audio.sink import Sink, SinkSpec, open_sink
from .bundles import VoiceStore
from .boards import Detection, default_profile_dirs, load_profiles, read_facts, select
from .cache import AudioCache
from .config import DaemonConfig
from .engine import Engine, EngineLimits
from .errors import MynaError
from .catalog import SynthCatalog, packaged_voice_dir

_LOGGER = logging.getLogger(__name__)


@dataclass
class Core:
    """What a daemon and an in-process `myna say --local` share: board, voices, engine, sink."""

    config: DaemonConfig
    detection: Detection
    catalog: SynthCatalog
    sink: Sink
    engine: Engine
    front_ends: list[Any] = field(default_factory=list)

    def close(self) -> None:
        """Stop in the reverse order of building."""
        self.engine.close()
        self.sink.close()


def detect_board(config: DaemonConfig, root: Path = Path("/"), arch: str | None = None) -> Detection:
    """Load the profile matrix (vendor, then /etc, then config dirs) and pick this board's profile."""
    profiles = load_profiles(default_profile_dirs(config.profile_dirs))
    return select(profiles, read_facts(root, arch=arch), config.board)


def build_core(config: DaemonConfig, *, sink_uri: str | None = None, root: Path = Path("/")) -> Core:
    """Build board → voices → engine → sink in this visible order; nothing is module-global."""
    detection = detect_board(config, root)
    profile = detection.profile
    voice_dirs = list(config.voice_dirs) or [packaged_voice_dir(), Path(const.ETC_VOICE_DIR)]
    store = VoiceStore(config.voice_store_dir or Path(const.VOICE_STORE_DIR))
    trusted = config.trusted_keys_dir or Path(const.TRUSTED_KEYS_DIR)
    catalog = SynthCatalog.from_dirs(
        voice_dirs, tier=profile.tier, threads=profile.threads, default_voice=config.default_voice,
        store=store, trusted_keys_dir=trusted,
    )  # fmt: skip
    spec = SinkSpec.parse(sink_uri or config.sink or "alsa")
    sink = open_sink(spec, period_frames=profile.period_frames, periods=profile.periods, default_alsa_device=profile.alsa_device)
    cache = AudioCache(profile.cache_mb * 1024 * 1024)
    limits = EngineLimits(max_text_chars=profile.max_text_chars, queue_max=profile.queue_max, write_frames=profile.period_frames)
    info = {"board": profile.name, "tier": catalog.tier_summary(), "sink": spec.to_uri()}
    engine = Engine(catalog, sink, limits=limits, cache=cache, info=info)
    engine.start()
    return Core(config, detection, catalog, sink, engine)


async def serve(core: Core) -> None:
    """Run the front ends on one loop until SIGTERM/SIGINT; ping the systemd watchdog meanwhile."""
    from .api.dbus import DBusFrontEnd
    from .api.socket import SocketFrontEnd

    config = core.config
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        if config.dbus:
            dbus = DBusFrontEnd(core.engine, session=config.session_bus)
            await dbus.start()
            core.front_ends.append(dbus)
        socket_path = const.DEFAULT_SOCKET_PATH if config.socket_path is None else config.socket_path
        if socket_path:
            sock = SocketFrontEnd(core.engine, socket_path, mode=const.SOCKET_MODE, group=config.socket_group)
            await sock.start()
            core.front_ends.append(sock)
        sdnotify.notify(sdnotify.READY, sdnotify.status(f"serving on {core.detection.profile.name}"))
        _LOGGER.info("mynad %s ready", __version__)
        watchdog = sdnotify.Watchdog.from_env()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=watchdog.period if watchdog else 3600)
            except asyncio.TimeoutError:
                # The loop being here proves the front ends live; the worker must be alive too,
                # otherwise systemd should restart us rather than let us accept jobs nobody plays.
                if watchdog and core.engine.alive():
                    watchdog.ping()
    finally:
        sdnotify.notify(sdnotify.STOPPING)
        for front_end in reversed(core.front_ends):
            await front_end.stop()
        core.front_ends.clear()


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mynad", description="Myna text-to-speech daemon")
    parser.add_argument("--config", type=Path, default=Path(const.DEFAULT_CONFIG_PATH), help="YAML config file")
    parser.add_argument("--board", help="board profile name (skips detection)")
    parser.add_argument("--session-bus", action="store_true", default=None, help="serve on the session bus")
    parser.add_argument("--no-dbus", action="store_true", help="serve the socket only")
    parser.add_argument("--socket", help="Unix socket path ('' disables the socket)")
    parser.add_argument("--sink", help="alsa:DEVICE | wav:PATH | null")
    parser.add_argument("--voices", type=Path, action="append", help="voice pack directory (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--version", action="version", version=f"mynad {__version__}")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `mynad`."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        config = DaemonConfig.load(args.config).with_overrides(
            board=args.board,
            session_bus=args.session_bus,
            socket_path=args.socket,
            sink=args.sink,
            voice_dirs=tuple(args.voices) if args.voices else None,
            dbus=False if args.no_dbus else None,
        )
        core = build_core(config)
    except MynaError as exc:
        _LOGGER.error("cannot start: %s", exc.message)
        return 2
    try:
        asyncio.run(serve(core))
    except MynaError as exc:
        _LOGGER.error("stopped: %s", exc.message)
        return 1
    finally:
        core.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
