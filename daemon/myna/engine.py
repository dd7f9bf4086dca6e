"""The one engine: a bounded SSIP-priority queue, one worker thread, synthesis streamed to the sink.

Pre-emption follows speech-dispatcher's message priority model:

============  ===================================================================
important     never dropped or interrupted; interrupts anything else; queued FIFO
              behind other important jobs; a pre-empted ``message`` is postponed
              (spoken again from the start later), anything lower is cancelled
message       waits for important; cancels playing and queued text/notification/
              progress; queued FIFO
text          waits for the two above; cancels playing and queued notification/
              progress; queued FIFO
notification  spoken only when nothing else plays or waits, otherwise dropped at
              once; a newer notification replaces a queued one
progress      like notification, but kept queued (only the newest) until speech
              is free, so the last progress report is always heard
============  ===================================================================

Front ends call ``speak``/``stop``/``stop_all``/``voices``/``status`` and
``install_voice``/``remove_voice`` from any thread;
events are delivered to subscribers on the worker thread (or on the caller's thread
for ``queued`` and for jobs cancelled before they started).
"""

from __future__ import annotations

import enum
import itertools
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterator, Mapping, Protocol, Sequence

import numpy as np

from . import __version__
from .audio.sink import Sink
from .cache import AudioCache, Rendering
from .config import Priority, SpeakOptions
from .errors import Busy, InvalidText, MynaError
from .text.frontend import Frontend, validate_text
from .text.units import PhonemeChunk

_LOGGER = logging.getLogger(__name__)


class EventKind(enum.Enum):
    """What happened to a job."""

    QUEUED = "queued"
    STARTED = "started"
    WORD = "word"
    FINISHED = "finished"


class Outcome(enum.Enum):
    """How a job ended."""

    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclass(frozen=True)
class JobEvent:
    """One event of one job, as front ends forward it."""

    kind: EventKind
    """What happened."""
    job_id: int
    """The job, as returned by ``speak``."""
    outcome: Outcome | None = None
    """Set on FINISHED."""
    char_offset: int = 0
    """WORD: offset of the word in the caller's text, in code points."""
    char_length: int = 0
    """WORD: length of the written word in code points."""
    error_code: str | None = None
    """FINISHED with FAILED: the public error code."""


@dataclass(frozen=True)
class EngineLimits:
    """The board profile's limits that the engine enforces."""

    max_text_chars: int = 4000
    """Longest text accepted, in code points."""
    queue_max: int = 32
    """Most jobs waiting (not counting the one speaking)."""
    write_frames: int = 1024
    """Largest slice written to the sink at once; cancellation is checked between slices."""


class ChunkAudio(Protocol):
    """Audio of one phoneme chunk, streamed block by block."""

    word_samples: tuple[int, ...]
    total_samples: int

    def blocks(self) -> Iterator[np.ndarray]: ...


class Renderer(Protocol):
    """Synthesis for one voice pack (pipeline.Synthesizer)."""

    sample_rate: int
    max_phonemes: int

    def render(
        self, chunk: PhonemeChunk, speaker: Mapping[str, np.ndarray], rate: float, pitch: float
    ) -> ChunkAudio: ...


@dataclass(frozen=True)
class BoundVoice:
    """A voice ready to speak: the frontend for its inventory, its pack's renderer, its adapter."""

    voice_id: str
    renderer: Renderer
    speaker: Mapping[str, np.ndarray]
    frontend: Frontend


@dataclass(frozen=True)
class VoiceListing:
    """What ListVoices shows of a voice."""

    id: str
    name: str
    language: str


class VoiceCatalog(Protocol):
    """The installed voices as the engine needs them."""

    @property
    def default_voice(self) -> str: ...

    def listing(self) -> Sequence[VoiceListing]: ...

    def bind(self, voice_id: str) -> BoundVoice:
        """Return the voice or raise UnknownVoice."""
        ...

    def install_voice(self, path: str) -> str:
        """Verify and install the voice bundle at ``path``; return its voice id."""
        ...

    def remove_voice(self, voice_id: str) -> None:
        """Uninstall an installed voice."""
        ...


class SpeechEngine(Protocol):
    """What front ends call: the Engine below, or a test double."""

    def speak(self, text: str, options: SpeakOptions) -> int: ...

    def stop(self, job_id: int) -> bool: ...

    def stop_all(self) -> None: ...

    def voices(self) -> Sequence[Any]: ...

    def status(self) -> Mapping[str, str | int | float | bool]: ...

    def subscribe(self, callback: Callable[[JobEvent], None]) -> Callable[[], None]: ...

    def install_voice(self, path: str) -> str: ...

    def remove_voice(self, voice_id: str) -> None: ...


class _Job:
    """Mutable state of one request; only the engine touches it, under its lock."""

    __slots__ = ("id", "text", "options", "voice", "chunks", "seq", "cancel", "postpone", "started", "accepted", "first_audio", "last_span")

    def __init__(self, job_id: int, text: str, options: SpeakOptions, voice: BoundVoice, chunks: list[PhonemeChunk]):
        self.id = job_id
        self.text = text
        self.options = options
        self.voice = voice
        self.chunks = chunks
        self.seq = job_id
        self.cancel = threading.Event()
        self.postpone = False
        self.started = False
        self.accepted = time.monotonic()
        self.first_audio: float | None = None
        self.last_span: tuple[int, int] | None = None

    @property
    def priority(self) -> Priority:
        return self.options.priority

    @property
    def cache_key(self) -> Hashable:
        o = self.options
        return (self.voice.voice_id, self.text, o.ssml, o.rate, o.pitch, o.volume)


Subscriber = Callable[[JobEvent], None]


class Engine:
    """Owns the queue, the worker thread, the cache and the sink; front ends only call it."""

    def __init__(
        self,
        catalog: VoiceCatalog,
        sink: Sink,
        *,
        limits: EngineLimits = EngineLimits(),
        cache: AudioCache | None = None,
        info: Mapping[str, str] | None = None,
    ) -> None:
        self._catalog = catalog
        self._sink = sink
        self._limits = limits
        self._cache = cache if cache is not None else AudioCache(0)
        self._info = dict(info or {})
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: list[_Job] = []
        self._current: _Job | None = None
        self._subscribers: list[Subscriber] = []
        self._closing = False
        self._thread: threading.Thread | None = None
        self._counts = {outcome: 0 for outcome in Outcome}
        self._last_first_audio_ms = -1.0
        self._last_first_audio_at = 0.0
        # Grown on demand and then reused: steady-state requests allocate no sample buffers.
        self._scratch_f = np.zeros(0, dtype=np.float32)
        self._scratch_i = np.zeros(0, dtype=np.int16)
        self._record = np.zeros(0, dtype=np.int16)  # a request's audio on its way into the cache
        self._zeros = np.zeros(0, dtype=np.int16)  # silence for SSML breaks

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="myna-worker", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Cancel everything and stop the worker."""
        self.stop_all()
        with self._wake:
            self._closing = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def limits(self) -> EngineLimits:
        """The limits this engine enforces."""
        return self._limits

    # -- the API front ends call -----------------------------------------------------------

    def speak(self, text: str, options: SpeakOptions = SpeakOptions()) -> int:
        """Queue ``text``; return its job id or raise an input error or Busy."""
        validate_text(text, self._limits.max_text_chars)
        voice = self._catalog.bind(options.voice or self._catalog.default_voice)
        chunks = list(voice.frontend.chunks(text, voice.renderer.max_phonemes, ssml=options.ssml))
        if not chunks:
            raise InvalidText("text contains nothing speakable")
        cancelled: list[_Job] = []
        with self._wake:
            if self._closing:
                raise Busy("the daemon is shutting down")
            job = _Job(next(self._ids), text, options, voice, chunks)
            dropped = self._admit(job, cancelled)
            if not dropped:
                self._queue.append(job)
                self._queue.sort(key=lambda j: (j.priority.rank, j.seq))
                self._wake.notify_all()
        self._emit(JobEvent(EventKind.QUEUED, job.id))
        for other in cancelled:
            if not other.started:
                self._finish(other, Outcome.CANCELLED)
        if dropped:
            self._finish(job, Outcome.CANCELLED)
        return job.id

    def stop(self, job_id: int) -> bool:
        """Cancel one job, playing or queued; False when it is unknown or already over."""
        with self._lock:
            if self._current is not None and self._current.id == job_id:
                self._current.postpone = False
                self._current.cancel.set()
                return True
            for job in self._queue:
                if job.id == job_id:
                    self._queue.remove(job)
                    break
            else:
                return False
        self._finish(job, Outcome.CANCELLED)
        return True

    def stop_all(self) -> None:
        """Cancel the playing job and empty the queue."""
        with self._lock:
            queued, self._queue = self._queue, []
            if self._current is not None:
                self._current.postpone = False
                self._current.cancel.set()
        for job in queued:
            self._finish(job, Outcome.CANCELLED)

    def voices(self) -> list[VoiceListing]:
        """The installed voices."""
        return list(self._catalog.listing())

    def install_voice(self, path: str) -> str:
        """Install a signed voice bundle (blocking: file I/O and checks; call it off the event loop)."""
        voice_id = self._catalog.install_voice(path)
        # Cached audio is keyed by voice id: a replaced voice must not replay the old one's audio.
        self._cache.clear()
        return voice_id

    def remove_voice(self, voice_id: str) -> None:
        """Uninstall an installed voice; jobs already queued with it still finish."""
        self._catalog.remove_voice(voice_id)
        self._cache.clear()

    def status(self) -> dict[str, str | int | float | bool]:
        """A snapshot for GetStatus and `myna status`."""
        with self._lock:
            current = self._current.id if self._current is not None else 0
            queued = len(self._queue)
        out: dict[str, str | int | float | bool] = {"version": __version__}
        out.update(self._info)
        out.update(
            {
                "default_voice": self._catalog.default_voice,
                "current_job": current,
                "queue_length": queued,
                "queue_max": self._limits.queue_max,
                "max_text_chars": self._limits.max_text_chars,
                "jobs_done": self._counts[Outcome.DONE],
                "jobs_cancelled": self._counts[Outcome.CANCELLED],
                "jobs_failed": self._counts[Outcome.FAILED],
                "cache_hits": self._cache.hits,
                "cache_misses": self._cache.misses,
                "cache_bytes": self._cache.nbytes,
                "last_first_audio_ms": round(self._last_first_audio_ms, 3),
                # CLOCK_MONOTONIC is shared by all processes: a client can subtract its own send time.
                "last_first_audio_monotonic": self._last_first_audio_at,
            }
        )
        return out

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Receive every job event; returns the function that unsubscribes."""
        with self._lock:
            self._subscribers = [*self._subscribers, callback]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not callback]

        return unsubscribe

    def alive(self) -> bool:
        """True while the worker thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def idle(self) -> bool:
        """True when nothing plays or waits."""
        with self._lock:
            return self._current is None and not self._queue

    # -- priorities ------------------------------------------------------------------------

    def _admit(self, job: _Job, cancelled: list[_Job]) -> bool:
        """Apply the pre-emption table under the lock; return True when ``job`` is dropped."""
        prio = job.priority
        current = self._current
        if prio in (Priority.NOTIFICATION, Priority.PROGRESS):
            self._cancel_queued(lambda j: j.priority is prio, cancelled)
            busy = current is not None or any(j.priority not in (Priority.NOTIFICATION, Priority.PROGRESS) for j in self._queue)
            if prio is Priority.NOTIFICATION and busy:
                return True
        else:
            victims = {Priority.NOTIFICATION, Priority.PROGRESS}
            if prio in (Priority.IMPORTANT, Priority.MESSAGE):
                victims.add(Priority.TEXT)
            self._cancel_queued(lambda j: j.priority in victims, cancelled)
            if current is not None and not current.cancel.is_set():
                if current.priority in victims:
                    current.cancel.set()
                elif prio is Priority.IMPORTANT and current.priority is Priority.MESSAGE:
                    current.postpone = True
                    current.cancel.set()
        if len(self._queue) >= self._limits.queue_max:
            # Full: make room by dropping the least urgent waiting job, if it is less urgent than this one.
            worst = max(self._queue, key=lambda j: (j.priority.rank, j.seq))
            if worst.priority.rank <= prio.rank:
                raise Busy(f"the queue is full ({self._limits.queue_max} jobs waiting)")
            self._queue.remove(worst)
            cancelled.append(worst)
        return False

    def _cancel_queued(self, match: Callable[[_Job], bool], cancelled: list[_Job]) -> None:
        keep: list[_Job] = []
        for queued in self._queue:
            (cancelled if match(queued) else keep).append(queued)
        self._queue = keep

    # -- worker ----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closing:
                    self._wake.wait()
                if self._closing:
                    return
                job = self._queue.pop(0)
                job.cancel.clear()
                self._current = job
            outcome, code = self._play(job)
            with self._wake:
                self._current = None
                if job.postpone and not self._closing:
                    # Postponed by an important job: speak it again from the start when it is its turn.
                    job.postpone = False
                    self._queue.append(job)
                    self._queue.sort(key=lambda j: (j.priority.rank, j.seq))
                    continue
            self._finish(job, outcome, code)

    def _play(self, job: _Job) -> tuple[Outcome, str | None]:
        job.last_span = None
        if not job.started:
            job.started = True
            self._emit(JobEvent(EventKind.STARTED, job.id))
        try:
            self._sink.open(job.voice.renderer.sample_rate)
            self._sink.mark()
            cached = self._cache.get(job.cache_key)
            if cached is not None:
                done = self._play_rendering(job, cached)
            else:
                done = self._synthesize(job)
            if not done:
                self._sink.drop()
                return Outcome.CANCELLED, None
            self._sink.drain()
            return Outcome.DONE, None
        except MynaError as exc:
            _LOGGER.error("job %d failed: %s", job.id, exc.message)
            code = exc.public_code
        except Exception:
            _LOGGER.exception("job %d failed", job.id)
            code = "Internal"
        try:
            self._sink.drop()
        except Exception:
            _LOGGER.exception("could not reset the sink after a failure")
        return Outcome.FAILED, code

    def _synthesize(self, job: _Job) -> bool:
        opts = job.options
        gain = np.float32(32767.0 * opts.volume)
        step = self._limits.write_frames
        keep = self._cache.max_bytes > 0
        written = 0
        words: list[tuple[int, int, int]] = []
        for chunk in job.chunks:
            renderer = job.voice.renderer
            audio = renderer.render(chunk, job.voice.speaker, opts.rate * chunk.rate, opts.pitch)
            marks = [(written + start, span.char_offset, span.char_length) for start, span in zip(audio.word_samples, chunk.words)]
            words.extend(marks)
            pcm = (self._to_int16(block[lo : lo + step], gain) for block in audio.blocks() for lo in range(0, len(block), step))
            silence = self._silence(chunk.silence_after_ms * renderer.sample_rate // 1000, step)
            written = self._stream(job, itertools.chain(pcm, silence), marks, written, keep)
            if written < 0:
                return False
        if keep and written * 2 <= self._cache.max_bytes:
            # The cache entry is the one allocation a cache miss makes for its audio.
            self._cache.put(job.cache_key, Rendering(self._record[:written].copy(), tuple(words)))
        return True

    def _play_rendering(self, job: _Job, rendering: Rendering) -> bool:
        step = self._limits.write_frames
        samples = rendering.samples
        slices = (samples[lo : lo + step] for lo in range(0, len(samples), step))
        return self._stream(job, slices, list(rendering.words), 0, keep=False) >= 0

    def _stream(self, job: _Job, pcm: Iterator[np.ndarray], marks: list[tuple[int, int, int]], written: int, keep: bool) -> int:
        """Write int16 slices to the sink, announcing each word as its first sample goes out.

        Returns the new sample count, or -1 when the job was cancelled on the way.
        """
        pending = iter(marks)
        mark = next(pending, None)
        for part in pcm:
            if job.cancel.is_set():
                return -1
            while mark is not None and mark[0] <= written + len(part):
                self._word(job, mark)
                mark = next(pending, None)
            self._sink.write(part)
            self._note_first_audio(job)
            if keep:
                self._keep(part, written)
            written += len(part)
        while mark is not None:
            self._word(job, mark)
            mark = next(pending, None)
        return -1 if job.cancel.is_set() else written

    def _word(self, job: _Job, mark: tuple[int, int, int]) -> None:
        # Spoken words of one written token share its span; announce the span once.
        span = (mark[1], mark[2])
        if span != job.last_span:
            job.last_span = span
            self._emit(JobEvent(EventKind.WORD, job.id, char_offset=span[0], char_length=span[1]))

    def _silence(self, samples: int, step: int) -> Iterator[np.ndarray]:
        if len(self._zeros) < step:
            self._zeros = np.zeros(step, dtype=np.int16)
        for lo in range(0, samples, step):
            yield self._zeros[: min(step, samples - lo)]

    def _keep(self, pcm: np.ndarray, at: int) -> None:
        end = at + len(pcm)
        if end > len(self._record):
            if end * 2 > self._cache.max_bytes:
                return  # longer than the whole cache: it will not be stored, so don't hold it
            grown = np.zeros(max(end, 2 * len(self._record)), dtype=np.int16)
            grown[: len(self._record)] = self._record
            self._record = grown
        self._record[at:end] = pcm

    def _note_first_audio(self, job: _Job) -> None:
        # The sink stamps its first real device write (a full ALSA period), which is what a
        # listener waits for; measure from the moment speak() accepted the job.
        if job.first_audio is None and self._sink.first_write_at is not None:
            job.first_audio = self._sink.first_write_at
            self._last_first_audio_ms = (job.first_audio - job.accepted) * 1000.0
            self._last_first_audio_at = job.first_audio

    def _to_int16(self, block: np.ndarray, gain: np.float32) -> np.ndarray:
        n = len(block)
        if len(self._scratch_f) < n:
            self._scratch_f = np.zeros(n, dtype=np.float32)
            self._scratch_i = np.zeros(n, dtype=np.int16)
        f = self._scratch_f[:n]
        np.multiply(block, gain, out=f)
        np.rint(f, out=f)
        np.clip(f, -32768.0, 32767.0, out=f)
        out = self._scratch_i[:n]
        np.copyto(out, f, casting="unsafe")
        return out

    # -- events ----------------------------------------------------------------------------

    def _finish(self, job: _Job, outcome: Outcome, code: str | None = None) -> None:
        with self._lock:
            self._counts[outcome] += 1
        self._emit(JobEvent(EventKind.FINISHED, job.id, outcome=outcome, error_code=code))

    def _emit(self, event: JobEvent) -> None:
        for callback in self._subscribers:
            try:
                callback(event)
            except Exception:
                # A broken listener must not stop speech for everyone else.
                _LOGGER.exception("event subscriber failed on %s", event.kind.value)
