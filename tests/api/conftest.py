"""Fixtures for the front-end tests: an engine double, an event loop on a thread, a private D-Bus daemon."""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator, TypeVar

import pytest

from myna.config import SpeakOptions
from myna.engine import EventKind, JobEvent, Outcome
from myna.errors import Busy, UnknownVoice, VoiceNotRemovable
from myna.text.frontend import validate_text

_T = TypeVar("_T")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class FakeVoice:
    """What ListVoices shows of a voice."""

    id: str
    name: str
    language: str


class RecordingEngine:
    """An engine double: validates like the engine, records calls, plays jobs on its own worker thread.

    With ``hold=True`` jobs wait until ``release()`` (or are stopped), so tests can fill the queue
    or disconnect mid-job.  ``fail_with`` makes the next calls raise that exception.
    """

    def __init__(self, *, queue_max: int = 8, max_text_chars: int = 4000, hold: bool = False) -> None:
        self.queue_max = queue_max
        self.max_text_chars = max_text_chars
        self.hold = hold
        self.fail_with: BaseException | None = None
        self.calls: list[tuple[str, Any]] = []
        self.voice_list = [FakeVoice("amy", "Amy", "en-US"), FakeVoice("joe", "Joe", "en-GB")]
        self._lock = threading.Lock()
        self._next_id = 1
        self._pending: dict[int, str] = {}
        self._subscribers: list[Callable[[JobEvent], None]] = []
        self._work: queue.Queue[tuple[int, str] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="recording-engine", daemon=True)
        self._thread.start()

    # -- the engine API --------------------------------------------------------------------

    def speak(self, text: str, options: SpeakOptions) -> int:
        self.calls.append(("speak", (text, options)))
        self._maybe_fail()
        validate_text(text, self.max_text_chars)  # the engine's own check: empty, too long, surrogates
        if options.voice is not None and options.voice not in {v.id for v in self.voice_list}:
            raise UnknownVoice(f"no voice {options.voice!r}")
        with self._lock:
            if len(self._pending) >= self.queue_max:
                raise Busy(f"the queue is full ({self.queue_max} jobs waiting)")
            job_id = self._next_id
            self._next_id += 1
            self._pending[job_id] = text
        self._emit(JobEvent(EventKind.QUEUED, job_id))
        if not self.hold:
            self._work.put((job_id, text))
        return job_id

    def stop(self, job_id: int) -> bool:
        self.calls.append(("stop", job_id))
        self._maybe_fail()
        with self._lock:
            found = self._pending.pop(job_id, None) is not None
        if found:
            self._emit(JobEvent(EventKind.FINISHED, job_id, outcome=Outcome.CANCELLED))
        return found

    def stop_all(self) -> None:
        self.calls.append(("stop_all", None))
        self._maybe_fail()
        with self._lock:
            ids, self._pending = list(self._pending), {}
        for job_id in ids:
            self._emit(JobEvent(EventKind.FINISHED, job_id, outcome=Outcome.CANCELLED))

    def voices(self) -> list[FakeVoice]:
        self.calls.append(("voices", None))
        self._maybe_fail()
        return list(self.voice_list)

    def status(self) -> dict[str, str | int | float | bool]:
        self.calls.append(("status", None))
        self._maybe_fail()
        with self._lock:
            waiting = len(self._pending)
        return {"version": "test", "queue_length": waiting, "queue_max": self.queue_max, "rtf": 0.25, "busy": waiting > 0}

    def install_voice(self, path: str) -> str:
        """Pretend ``path`` (``/…/<id>.mynavoice``) holds voice ``<id>``; the real checks live in myna.bundles."""
        self.calls.append(("install_voice", path))
        self._maybe_fail()
        voice_id = Path(path).name.removesuffix(".mynavoice")
        if voice_id not in {v.id for v in self.voice_list}:
            self.voice_list.append(FakeVoice(voice_id, voice_id.title(), "en-US"))
        return voice_id

    def remove_voice(self, voice_id: str) -> None:
        """Forget an installed voice; the built-in ``amy`` and ``joe`` are not removable."""
        self.calls.append(("remove_voice", voice_id))
        self._maybe_fail()
        if voice_id not in {v.id for v in self.voice_list}:
            raise UnknownVoice(f"voice {voice_id!r} is not installed")
        if voice_id in ("amy", "joe"):
            raise VoiceNotRemovable(f"voice {voice_id!r} is built into a pack")
        self.voice_list = [v for v in self.voice_list if v.id != voice_id]

    def subscribe(self, callback: Callable[[JobEvent], None]) -> Callable[[], None]:
        with self._lock:
            self._subscribers = [*self._subscribers, callback]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not callback]

        return unsubscribe

    # -- test controls ---------------------------------------------------------------------

    @property
    def subscriber_count(self) -> int:
        """How many front ends listen now."""
        with self._lock:
            return len(self._subscribers)

    def release(self) -> None:
        """Let held jobs play."""
        with self._lock:
            jobs = sorted(self._pending.items())
        for job in jobs:
            self._work.put(job)

    def close(self) -> None:
        """Stop the worker thread."""
        self._work.put(None)
        self._thread.join(5)

    def _maybe_fail(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            job_id, text = item
            with self._lock:
                if job_id not in self._pending:
                    continue  # stopped before it started
            self._emit(JobEvent(EventKind.STARTED, job_id))
            for match in _WORD.finditer(text):
                self._emit(JobEvent(EventKind.WORD, job_id, char_offset=match.start(), char_length=len(match.group())))
            with self._lock:
                self._pending.pop(job_id, None)
            self._emit(JobEvent(EventKind.FINISHED, job_id, outcome=Outcome.DONE))

    def _emit(self, event: JobEvent) -> None:
        for callback in list(self._subscribers):
            callback(event)


class LoopThread:
    """An asyncio loop on its own thread, so tests can drive the server with blocking clients."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.errors: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda loop, context: self.errors.append(context))
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Awaitable[_T], timeout: float = 20.0) -> _T:
        """Run a coroutine on the loop and wait for its result."""

        async def wrapper() -> _T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(timeout)

    def call(self, fn: Callable[[], _T], timeout: float = 10.0) -> _T:
        """Run a plain function on the loop's thread."""
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def runner() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed back to the test thread
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(runner)
        return future.result(timeout)

    def close(self) -> None:
        """Finish pending callbacks, stop and close the loop."""

        async def drain() -> None:
            await self.loop.shutdown_asyncgens()

        self.run(drain())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@pytest.fixture
def make_engine() -> Iterator[Callable[..., RecordingEngine]]:
    """Build RecordingEngines with chosen limits; all are closed after the test."""
    made: list[RecordingEngine] = []

    def factory(**kwargs: Any) -> RecordingEngine:
        made.append(RecordingEngine(**kwargs))
        return made[-1]

    yield factory
    for double in made:
        double.close()


@pytest.fixture
def engine(make_engine: Callable[..., RecordingEngine]) -> RecordingEngine:
    """A RecordingEngine that plays every job at once."""
    return make_engine()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    """A running loop; fails the test if the loop reported an unhandled error."""
    lt = LoopThread()
    yield lt
    lt.close()
    assert not lt.errors, lt.errors


@pytest.fixture
def short_tmp(tmp_path: Path) -> Iterator[Path]:
    """A directory whose paths fit sockaddr_un's 108 bytes even under a long pytest tmp root."""
    if len(str(tmp_path)) < 80:
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="myna-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def bus_address() -> Iterator[str]:
    """A private session bus for this module's tests: ``dbus-daemon --session``, as dbus-fast's CI does."""
    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon is not installed")
    proc = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1"],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    address = proc.stdout.readline().strip()
    try:
        assert address.startswith("unix:"), address
        yield address
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()

