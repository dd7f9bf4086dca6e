"""Synthesize a speaker's share of the corpus: resumable, parallel (one engine per worker), with a progress bar."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import queue
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from .metadata import MetadataWriter, Record, load_done, wav_path, write_wav
from .speakers import SpeakerSpec, open_engine
from .text import CorpusText

_LOGGER = logging.getLogger(__name__)

RUNS = "runs.jsonl"
MAX_FAILURES = 10
"""A run stops when this many utterances failed and fewer succeeded."""


@dataclass(frozen=True)
class Job:
    """One utterance to make."""

    text: CorpusText
    phonemes: list[str]
    speaker_dir: str


@dataclass(frozen=True)
class RunStats:
    """What one call of ``generate_speaker`` did."""

    speaker: str
    utterances: int
    audio_seconds: float
    wall_seconds: float
    jobs: int
    skipped: int
    failed: int = 0
    command: str = ""

    @property
    def throughput(self) -> float:
        """Seconds of audio per second of wall time (all workers together)."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {"speaker": self.speaker, "utterances": self.utterances, "audio_seconds": round(self.audio_seconds, 3),
                "wall_seconds": round(self.wall_seconds, 3), "jobs": self.jobs, "skipped": self.skipped,
                "failed": self.failed, "command": self.command,
                "throughput": round(self.throughput, 4), "cpus": os.cpu_count(),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


# -- worker side ----------------------------------------------------------------------------------

_ENGINE: Any = None
_SPEC: SpeakerSpec | None = None


def _init_worker(spec: SpeakerSpec) -> None:
    global _ENGINE, _SPEC
    _SPEC = spec
    _ENGINE = open_engine(spec)


def _work(job: Job) -> dict[str, Any]:
    assert _ENGINE is not None and _SPEC is not None
    try:
        result = _ENGINE.synthesize(job.text.speakable or job.text.spoken or job.text.written)
    except Exception as exc:  # one bad utterance must not end an hours-long run; the caller counts them
        return {"error": f"{type(exc).__name__}: {exc}", "id": job.text.id}
    samples = write_wav(wav_path(Path(job.speaker_dir), job.text.id), result.audio)
    record = Record(id=job.text.id, speaker=_SPEC.name, source=job.text.source, written=job.text.written,
                    spoken=job.text.spoken, speakable=job.text.speakable, phonemes=job.phonemes, samples=samples,
                    synth_seconds=result.seconds, piper_symbols=result.piper_symbols, durations=result.durations,
                    extra=result.extra or {})
    return record.to_dict()


# -- main side ------------------------------------------------------------------------------------

def _results(spec: SpeakerSpec, jobs: int, next_job: Callable[[], Job | None],
             wanted: Callable[[], bool]) -> Iterator[dict[str, Any]]:
    """Run jobs while ``wanted()``; at most 2 × ``jobs`` in flight, so a run stops soon after its target."""
    if not wanted():
        return  # nothing to do: do not load an engine
    if jobs <= 1:
        _init_worker(spec)
        try:
            while wanted() and (job := next_job()) is not None:
                yield _work(job)
        finally:
            if _ENGINE is not None:
                _ENGINE.close()
        return
    # spawn: workers must not inherit onnxruntime sessions or eSpeak pipes from the parent.
    ctx = multiprocessing.get_context("spawn")
    results: queue.Queue[Any] = queue.Queue()
    with ctx.Pool(jobs, initializer=_init_worker, initargs=(spec,)) as pool:
        in_flight = 0
        exhausted = False
        while True:
            while not exhausted and in_flight < 2 * jobs and wanted():
                job = next_job()
                if job is None:
                    exhausted = True
                    break
                pool.apply_async(_work, (job,), callback=results.put, error_callback=results.put)
                in_flight += 1
            if in_flight == 0:
                return
            item = results.get()
            in_flight -= 1
            if isinstance(item, BaseException):
                raise item
            yield item


def generate_speaker(spec: SpeakerSpec, texts: Sequence[CorpusText], out: Path, seconds: float, jobs: int,
                     phonemize: Callable[[CorpusText], list[str]], progress: bool = True,
                     command: str = "") -> RunStats:
    """Make utterances for ``spec`` from ``texts`` (in order) until it has ``seconds`` of audio on disk.

    Utterances with a valid metadata line are skipped; each new wav is renamed into place before its
    metadata line is appended, so an interrupted run resumes where it stopped.
    """
    speaker_dir = out / spec.name
    (speaker_dir / "wavs").mkdir(parents=True, exist_ok=True)
    done = load_done(speaker_dir)
    have = sum(r.seconds for r in done.values())
    todo = (t for t in texts if t.id not in done)
    state = {"have": have}

    def next_job() -> Job | None:
        item = next(todo, None)
        if item is None:
            _LOGGER.warning("%s: ran out of texts at %.1f s", spec.name, state["have"])
            return None
        return Job(item, phonemize(item), str(speaker_dir))

    writer = MetadataWriter(speaker_dir)
    made, made_seconds, failed = 0, 0.0, 0
    bar = _progress_bar(total=round(seconds), initial=min(round(have), round(seconds)), unit="s", desc=spec.name,
               disable=not progress, dynamic_ncols=True)
    t0 = time.perf_counter()
    try:
        for data in _results(spec, jobs, next_job, lambda: state["have"] < seconds):
            if "error" in data:
                failed += 1
                _LOGGER.warning("%s: %s failed: %s", spec.name, data["id"], data["error"])
                if failed >= MAX_FAILURES and failed > made:
                    raise RuntimeError(f"{spec.name}: {failed} utterances failed (last: {data['error']})")
                continue
            record = Record.from_dict(data)
            writer.append(record)
            made += 1
            made_seconds += record.seconds
            state["have"] += record.seconds
            bar.update(max(0, min(round(state["have"]), round(seconds)) - bar.n))
    finally:
        writer.close()
        bar.close()
    stats = RunStats(spec.name, made, made_seconds, time.perf_counter() - t0, jobs, len(done), failed, command)
    if made:
        with (speaker_dir / RUNS).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(stats.to_dict()) + "\n")
    return stats


class _NoBar:
    """Stands in for tqdm when it is not installed (CI has only the dev extra)."""

    def __init__(self, **kwargs: Any) -> None:
        self.n = int(kwargs.get("initial", 0))

    def update(self, n: int) -> None:
        self.n += n

    def close(self) -> None:
        pass


def _progress_bar(**kwargs: Any) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar(**kwargs)
    return tqdm(**kwargs)


def read_runs(speaker_dir: Path) -> list[dict[str, Any]]:
    """The run log of a speaker folder."""
    path = speaker_dir / RUNS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class Phonemizer:
    """Myna's frontend: text → ``myna-arpabet`` v1 symbols with word breaks and pause marks (cached)."""

    def __init__(self) -> None:
        from myna.text.english import EnglishFrontend

        self.frontend = EnglishFrontend.load()
        self._cache: dict[str, list[str]] = {}

    def __call__(self, text: CorpusText) -> list[str]:
        cached = self._cache.get(text.id)
        if cached is None:
            cached = self._cache[text.id] = phoneme_sequence(self.frontend, text.written)
        return cached


def phoneme_sequence(frontend: Any, written: str) -> list[str]:
    """ARPAbet of every word with ``" "`` between words and the normalizer's pause marks between clauses."""
    from myna.text.units import Break, Word

    words = frontend.words(written)
    tokens = [t for t in frontend._normalizer.tokens(written) if isinstance(t, (Word, Break))]
    if sum(isinstance(t, Word) for t in tokens) != len(words):
        tokens = [Word(w.spoken, None) for w in words]  # type: ignore[arg-type]  # no pauses then
    out: list[str] = []
    index = 0
    for token in tokens:
        if isinstance(token, Break):
            if out and out[-1] not in ",.?!":
                out.append(token.mark)
            continue
        if out and out[-1] not in ",.?!":
            out.append(" ")
        out.extend(words[index].phonemes)
        index += 1
    return out


def iter_records(out: Path, speakers: Iterable[str] | None = None) -> Iterator[Record]:
    """Every valid record under ``out`` (all speaker folders, or the named ones)."""
    names = list(speakers) if speakers is not None else sorted(p.name for p in out.iterdir() if (p / "metadata.jsonl").is_file())
    for name in names:
        yield from load_done(out / name, rewrite=False).values()
