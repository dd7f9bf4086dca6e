"""End-to-end harness: the real ``mynad`` as a subprocess, on a private session bus, playing into a file.

Nothing here imports the daemon's front ends: the daemon runs as its own process exactly as a
board runs it (``mynad --board generic-x86_64 --session-bus --socket ... --sink alsa:tofile``),
and the tests talk to it only with clients written by others (``busctl``, ``gdbus``) or over
its socket.  The ALSA device ``tofile`` is a ``type file`` PCM over the ``null`` slave defined
in an asoundrc of the test's own (``ALSA_CONFIG_PATH`` in the daemon's environment), so the
samples that reach "the card" land bit for bit in a raw file the tests can read.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from myna.api import const

REPO = Path(__file__).resolve().parents[2]
ALSA_CONF = Path("/usr/share/alsa/alsa.conf")
BOARD = "generic-x86_64"
PCM_NAME = "tofile"
SAMPLE_RATE = 22050  # the placeholder pack's rate (models/placeholder/manifest.json)
START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
CALL_TIMEOUT = 15.0
TOOLS = REPO / "tools"
TEXT = "Turn left in 300 meters."

QUEUE_MAX_OVERRIDE = 2
"""queue_max of the second daemon's overridden generic-x86_64 profile."""

RUNNING: list["Daemon"] = []
"""Daemons alive right now; their stderr is attached to the report of any test that fails."""


# ------------------------------------------------------------------------------ tools


def require_tools() -> None:
    """Skip (with the reason) when the D-Bus tools or the ALSA data files are missing."""
    missing = [tool for tool in ("dbus-daemon", "busctl", "gdbus") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"end-to-end tests need {', '.join(missing)} (dbus-daemon, busctl from systemd, gdbus from GLib)")
    if not ALSA_CONF.exists():
        pytest.skip(f"{ALSA_CONF} is missing (no alsa-lib data files): cannot define the file PCM")


def venv_tool(name: str) -> list[str]:
    """The console script installed next to this interpreter, or the module fallback."""
    script = Path(sys.executable).parent / name
    if script.exists():
        return [str(script)]
    if name == "mynad":
        return [sys.executable, "-m", "myna"]
    return [sys.executable, "-c", "import sys; from myna.cli import main; sys.exit(main())"]


def run(cmd: Sequence[str], *, timeout: float = CALL_TIMEOUT, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a client command to completion, capturing text output."""
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False, **kwargs)


# ------------------------------------------------------------------------------ the bus


class PrivateBus:
    """``dbus-daemon --session --nofork --print-address=1``: a bus nobody else uses."""

    def __init__(self) -> None:
        require_tools()
        self.proc = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.address = self.proc.stdout.readline().strip()
        if not self.address.startswith("unix:"):
            self.close()
            raise AssertionError(f"dbus-daemon printed no address: {self.address!r}")

    def close(self) -> None:
        """Stop the bus daemon."""
        self.proc.terminate()
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# ------------------------------------------------------------------------------ signals


_SIGNAL_LINE = re.compile(r"^(?P<path>/\S*): (?P<iface>[\w.]+)\.(?P<member>\w+) \((?P<args>.*)\)$")
_ARG = re.compile(r"(?:u?int(?:16|32|64)|byte)\s+(\d+)|'((?:[^'\\]|\\.)*)'|\b(\d+)\b")


@dataclass(frozen=True)
class Signal:
    """One signal as ``gdbus monitor`` printed it."""

    member: str
    args: tuple[int | str, ...]


def parse_signal_line(line: str) -> Signal | None:
    """Parse ``/org/myna/Speech1: org.myna.Speech1.JobFinished (uint64 3, 'done')``."""
    match = _SIGNAL_LINE.match(line.strip())
    if match is None or match["iface"] != const.INTERFACE:
        return None
    args: list[int | str] = []
    for typed, text, bare in _ARG.findall(match["args"]):
        if typed or bare:
            args.append(int(typed or bare))
        else:
            args.append(text)
    return Signal(match["member"], tuple(args))


class SignalMonitor:
    """``gdbus monitor --dest org.myna.Speech1`` in the background; its lines parsed into signals."""

    def __init__(self, address: str) -> None:
        self.lines: list[str] = []
        self.signals: list[Signal] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            ["gdbus", "monitor", "--address", address, "--dest", const.BUS_NAME, "--object-path", const.OBJECT_PATH],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self._thread = threading.Thread(target=self._read, name="gdbus-monitor", daemon=True)
        self._thread.start()
        # gdbus adds its match rule before it asks who owns the name, so once it reports the
        # owner, every later signal reaches it.
        self.wait_line(lambda line: "is owned by" in line, START_TIMEOUT)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            sig = parse_signal_line(line)
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                if sig is not None:
                    self.signals.append(sig)
                self._cond.notify_all()

    def wait_line(self, predicate: Callable[[str], bool], timeout: float) -> str:
        """Block until gdbus printed a line matching ``predicate``."""
        with self._cond:
            found: list[str] = []

            def seen() -> bool:
                found[:] = [line for line in self.lines if predicate(line)]
                return bool(found)

            if not self._cond.wait_for(seen, timeout):
                raise AssertionError(f"gdbus monitor printed no such line within {timeout}s: {self.lines}")
            return found[0]

    def wait(self, member: str, job: int, timeout: float = 20.0) -> Signal:
        """Block until ``member`` arrived for ``job``; return it."""
        with self._cond:
            found: list[Signal] = []

            def seen() -> bool:
                found[:] = [s for s in self.signals if s.member == member and s.args[:1] == (job,)]
                return bool(found)

            if not self._cond.wait_for(seen, timeout):
                raise AssertionError(f"no {member} for job {job} within {timeout}s; saw {self.signals}")
            return found[0]

    def of_job(self, job: int) -> list[Signal]:
        """Every signal of ``job`` so far, in arrival order."""
        with self._cond:
            return [s for s in self.signals if s.args[:1] == (job,)]

    def close(self) -> None:
        """Stop gdbus and its reader thread."""
        self.proc.terminate()
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._thread.join(STOP_TIMEOUT)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# ------------------------------------------------------------------------------ the daemon


@dataclass
class Daemon:
    """One running ``mynad`` and the ways to reach it."""

    name: str
    folder: Path
    address: str
    socket_path: Path
    raw_pattern: str
    stderr_path: Path
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    # -- files ---------------------------------------------------------------------------

    @property
    def raw_path(self) -> Path:
        """The raw file the ALSA file PCM writes at the voice's rate."""
        return Path(self.raw_pattern.replace("%r", str(SAMPLE_RATE)))

    def raw_samples(self) -> np.ndarray:
        """Every int16 sample that reached the ALSA device so far."""
        if not self.raw_path.exists():
            return np.zeros(0, dtype="<i2")
        return np.fromfile(self.raw_path, dtype="<i2")

    def stderr_text(self) -> str:
        """What the daemon logged so far."""
        try:
            return self.stderr_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"(cannot read {self.stderr_path}: {exc})"

    # -- D-Bus through others' clients ---------------------------------------------------

    def busctl(self, *args: str, timeout: float = CALL_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """``busctl --address=... call org.myna.Speech1 /org/myna/Speech1 org.myna.Speech1 ARGS``."""
        base = ["busctl", f"--address={self.address}", "call", const.BUS_NAME, const.OBJECT_PATH, const.INTERFACE]
        return run([*base, *args], timeout=timeout)

    def gdbus_call(self, method: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``gdbus call --address ... --method org.myna.Speech1.METHOD ARGS``."""
        cmd = [
            "gdbus", "call", "--address", self.address, "--dest", const.BUS_NAME,
            "--object-path", const.OBJECT_PATH, "--method", f"{const.INTERFACE}.{method}", *args,
        ]  # fmt: skip
        return run(cmd)

    def speak(self, text: str, *options: str) -> int:
        """Speak via busctl; ``options`` are busctl's ``a{sv}`` words after the count."""
        count = str(len(options) // 3)
        result = self.busctl("Speak", "sa{sv}", text, count, *options)
        assert result.returncode == 0, f"Speak failed: {result.stderr}"
        kind, _, job = result.stdout.strip().partition(" ")
        assert kind == "t", result.stdout
        return int(job)

    def status(self) -> dict[str, Any]:
        """``GetStatus`` through ``busctl --json=short``, unwrapped to plain values."""
        base = ["busctl", f"--address={self.address}", "--json=short", "call"]
        result = run([*base, const.BUS_NAME, const.OBJECT_PATH, const.INTERFACE, "GetStatus"])
        assert result.returncode == 0, result.stderr
        reply = json.loads(result.stdout)
        assert reply["type"] == "a{sv}", reply
        return {key: variant["data"] for key, variant in reply["data"][0].items()}

    def wait_idle(self, timeout: float = 20.0) -> dict[str, Any]:
        """Poll GetStatus until nothing plays or waits; return that status."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if status["current_job"] == 0 and status["queue_length"] == 0:
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"daemon not idle after {timeout}s: {status}")
            time.sleep(0.02)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, *extra: str) -> None:
        """Start mynad and wait until it owns its bus name and listens on its socket."""
        self.stderr_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            *venv_tool("mynad"),
            "--board", BOARD,
            "--session-bus",
            "--socket", str(self.socket_path),
            *extra,
        ]  # fmt: skip
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=self.env, cwd=self.folder)
        RUNNING.append(self)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                self._forget()
                raise AssertionError(f"mynad exited with {self.proc.returncode} while starting:\n{self.stderr_text()}")
            owned = run(["busctl", f"--address={self.address}", "status", const.BUS_NAME], timeout=5).returncode == 0
            if owned and self.socket_path.is_socket():
                return
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                self._forget()
                raise AssertionError(f"mynad not ready after {START_TIMEOUT}s:\n{self.stderr_text()}")
            time.sleep(0.05)

    def terminate(self) -> int:
        """SIGTERM; return the exit status (fails when it takes longer than a few seconds)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"mynad ignored SIGTERM for {STOP_TIMEOUT}s:\n{self.stderr_text()}") from None
        finally:
            self._forget()

    def _forget(self) -> None:
        if self in RUNNING:
            RUNNING.remove(self)


def write_asoundrc(folder: Path) -> tuple[Path, str]:
    """Define PCM ``tofile``: raw S16_LE into ``folder/out-<rate>.raw`` over the null slave."""
    pattern = str(folder / "out-%r.raw")
    rc = folder / "asoundrc"
    rc.write_text(
        f'pcm.{PCM_NAME} {{\n    type file\n    slave.pcm "null"\n    file "{pattern}"\n    format "raw"\n}}\n',
        encoding="utf-8",
    )
    return rc, pattern


def make_daemon(folder: Path, address: str, name: str) -> Daemon:
    """Prepare (not start) a daemon whose files live in ``folder`` (a short path: AF_UNIX allows 108 bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    rc, pattern = write_asoundrc(folder)
    env = dict(os.environ)
    env.pop("MYNA_SOCKET", None)
    env["ALSA_CONFIG_PATH"] = f"{ALSA_CONF}:{rc}"
    env["DBUS_SESSION_BUS_ADDRESS"] = address
    socket_path = folder / "s.sock"
    assert len(str(socket_path).encode()) < 100, socket_path
    return Daemon(name, folder, address, socket_path, pattern, folder / "mynad.stderr", env=env)


def stop_daemon(daemon: Daemon) -> None:
    """SIGTERM; the daemon must exit 0 within a few seconds, remove its socket and have logged no traceback."""
    rc = daemon.terminate()
    assert rc == 0, f"mynad exited with {rc} on SIGTERM:\n{daemon.stderr_text()}"
    assert not daemon.socket_path.exists(), "mynad left its socket behind"
    assert "Traceback" not in daemon.stderr_text(), f"mynad logged a traceback:\n{daemon.stderr_text()}"


def tool(name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python tools/NAME.py ARGS``."""
    return run([sys.executable, str(TOOLS / f"{name}.py"), *args], timeout=60, env=env)


class VoiceDevice:
    """The daemon under test and the workstation files around it."""

    def __init__(self, folder: Path, bus: PrivateBus, voice_dirs: Sequence[Path] = (REPO / "models" / "placeholder",)) -> None:
        """Files under ``folder``; the daemon loads the packs in ``voice_dirs`` (default: the placeholder)."""
        self.folder = folder
        self.bus = bus
        self.store = folder / "store"
        self.incoming = folder / "incoming"
        self.trusted = folder / "trusted"
        for path in (self.store, self.incoming, self.trusted):
            path.mkdir()
        self.config = folder / "mynad.yaml"
        self.config.write_text(
            "voice_dirs:\n" + "".join(f"  - {d}\n" for d in voice_dirs) +
            f"voice_store_dir: {self.store}\ntrusted_keys_dir: {self.trusted}\n",
            encoding="utf-8",
        )
        self.daemon = make_daemon(folder / "d", bus.address, "voices")
        self.monitor: SignalMonitor | None = None

    def start(self) -> None:
        self.daemon.start("--config", str(self.config), "--sink", f"alsa:{PCM_NAME}")
        self.monitor = SignalMonitor(self.bus.address)

    def stop(self) -> None:
        if self.monitor is not None:
            self.monitor.close()
            self.monitor = None
        if self.daemon.proc is not None and self.daemon.proc.returncode is None:
            stop_daemon(self.daemon)

    def env(self) -> dict[str, str]:
        """The environment push_voice sees: the private bus as the session bus."""
        return {**os.environ, "DBUS_SESSION_BUS_ADDRESS": self.bus.address}

    def push(self, bundle: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """``push_voice.py BUNDLE --bus session ARGS``."""
        return tool("push_voice", str(bundle), "--bus", "session", *args, env=self.env())

    def voices(self) -> list[str]:
        result = self.daemon.busctl("ListVoices")
        assert result.returncode == 0, result.stderr
        return re.findall(r'"([^"]*)" "[^"]*" "[^"]*"', result.stdout)

    def say(self, voice: str, fresh: bool = False) -> np.ndarray:
        """Speak TEXT with ``voice`` on an idle daemon; return the samples that reached the file PCM.

        ``fresh``: the first job of a restarted daemon, whose file PCM starts the raw file anew.
        """
        assert self.monitor is not None
        self.daemon.wait_idle()
        start = 0 if fresh else len(self.daemon.raw_samples())
        job = self.daemon.speak(TEXT, "voice", "s", voice)
        assert self.monitor.wait("JobFinished", job).args == (job, "done")
        self.daemon.wait_idle()
        return self.daemon.raw_samples()[start:]

    def gdbus_error(self, method: str, arg: str) -> tuple[str, str]:
        result = self.daemon.gdbus_call(method, arg)
        assert result.returncode != 0, result.stdout
        match = re.search(r"GDBus\.Error:([\w.]+): (.*)", result.stderr)
        assert match, result.stderr
        return match.group(1), match.group(2)
