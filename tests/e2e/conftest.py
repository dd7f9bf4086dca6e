"""End-to-end fixtures: the real ``mynad`` as a subprocess on a private session bus (see mynad_harness.py).

``mynad`` (module scope) is the daemon most tests share: placeholder voice, ``--board
generic-x86_64``, ``--session-bus``, a socket in a short /tmp folder, ``--sink alsa:tofile``.
``small_queue_mynad`` is a second one, on its own bus, whose board profile is overridden to
``queue_max: 2``.  At teardown each gets SIGTERM and must exit 0 within a few seconds and
remove its socket.  A failing test's report carries the stderr of every daemon still running.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mynad_harness import (
    BOARD,
    PCM_NAME,
    QUEUE_MAX_OVERRIDE,
    RUNNING,
    Daemon,
    PrivateBus,
    SignalMonitor,
    make_daemon,
    require_tools,
    stop_daemon,
)


@pytest.fixture(scope="module")
def short_dir() -> Iterator[Path]:
    """A module-wide folder under /tmp whose paths stay far below sockaddr_un's 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="myna-e2e-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def bus(short_dir: Path) -> Iterator[PrivateBus]:
    """A private session bus for the module's daemon."""
    require_tools()
    private = PrivateBus()
    yield private
    private.close()


@pytest.fixture(scope="module")
def no_config(short_dir: Path) -> Path:
    """A config with defaults except the voices: the shipped placeholder pack only.

    The placeholder is pinned so these tests neither depend on nor slow down with whichever trained
    packs ``models/`` holds (and /etc/myna/mynad.yaml on this machine is never read).
    """
    path = short_dir / "placeholder-only.yaml"
    path.write_text(f"voice_dirs:\n  - {Path(__file__).resolve().parents[2] / 'models' / 'placeholder'}\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def mynad(bus: PrivateBus, short_dir: Path, no_config: Path) -> Iterator[Daemon]:
    """The real daemon: placeholder voice, generic-x86_64, session bus, socket, ALSA file PCM."""
    daemon = make_daemon(short_dir / "main", bus.address, "main")
    daemon.start("--config", str(no_config), "--sink", f"alsa:{PCM_NAME}")
    try:
        yield daemon
    finally:
        if daemon.proc is not None and daemon.proc.returncode is None:
            stop_daemon(daemon)


@pytest.fixture(scope="module")
def monitor(mynad: Daemon) -> Iterator[SignalMonitor]:
    """``gdbus monitor`` on the daemon's signals, from before the module's first call."""
    watcher = SignalMonitor(mynad.address)
    yield watcher
    watcher.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach every running daemon's stderr to a failing test's report."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        for daemon in RUNNING:
            report.sections.append((f"mynad stderr ({daemon.name})", daemon.stderr_text()))



@pytest.fixture(scope="module")
def small_queue_mynad(short_dir: Path) -> Iterator[Daemon]:
    """A second daemon, on a bus of its own, whose generic-x86_64 profile is overridden to ``queue_max: 2``.

    The override goes the way an integrator's /etc file does: ``--config`` names a YAML whose
    ``profile_dirs`` lists a folder holding ``generic-x86_64.yaml`` with the one changed key.
    It plays on ``null:realtime`` so a job holds the device for its real duration and the
    queue can actually fill (the ALSA null slave takes audio faster than real time).
    """
    require_tools()
    private = PrivateBus()
    try:
        folder = short_dir / "small"
        profiles = folder / "profiles"
        profiles.mkdir(parents=True)
        (profiles / f"{BOARD}.yaml").write_text(f"queue_max: {QUEUE_MAX_OVERRIDE}\n", encoding="utf-8")
        config = folder / "mynad.yaml"
        config.write_text(f"profile_dirs:\n  - {profiles}\n", encoding="utf-8")
        daemon = make_daemon(folder, private.address, "queue_max=2")
        daemon.start("--config", str(config), "--sink", "null:realtime")
        try:
            yield daemon
        finally:
            if daemon.proc is not None and daemon.proc.returncode is None:
                stop_daemon(daemon)
    finally:
        private.close()
