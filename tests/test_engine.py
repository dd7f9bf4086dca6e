"""The engine: SSIP priorities and pre-emption, cancel, cache, word events, bad input — with the real voice."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import soundfile as sf

from support import EventLog
from myna.audio.null import NullSink
from myna.audio.wav import WavSink
from myna.cache import AudioCache
from myna.catalog import SynthCatalog
from myna.config import Priority, SpeakOptions
from myna.engine import Engine, EngineLimits, EventKind, Outcome
from myna.errors import Busy, InvalidText, TextTooLong, UnknownVoice

# About three seconds of placeholder audio: long enough to interrupt while it plays.
LONG = "Turn left in three hundred meters onto Main Street, then keep right at the fork and follow the signs."
SHORT = "Battery low."


def opts(priority: str = "text", **kw: object) -> SpeakOptions:
    return SpeakOptions.from_dict({"priority": priority, **kw})


@pytest.fixture
def paced(placeholder_catalog: SynthCatalog, event_log: EventLog) -> Iterator[Engine]:
    """An engine whose sink plays at real time, like a sound card, so jobs overlap in time."""
    engine = Engine(placeholder_catalog, NullSink(realtime=True), limits=EngineLimits(queue_max=4, write_frames=512))
    engine.subscribe(event_log)
    engine.start()
    yield engine
    engine.close()


@pytest.fixture
def fast(placeholder_catalog: SynthCatalog, event_log: EventLog, tmp_path: Path) -> Iterator[Engine]:
    """An engine writing to a WAV file as fast as it can, with a 4 MB cache."""
    engine = Engine(
        placeholder_catalog,
        WavSink(tmp_path / "out.wav"),
        limits=EngineLimits(max_text_chars=200, queue_max=4),
        cache=AudioCache(4 * 1024 * 1024),
    )
    engine.subscribe(event_log)
    engine.start()
    yield engine
    engine.close()


def test_a_job_reports_queued_started_each_word_and_done(fast: Engine, event_log: EventLog) -> None:
    text = "Exit 23B, then left."
    job = fast.speak(text, opts())
    assert event_log.finished(job) is Outcome.DONE
    kinds = event_log.kinds(job)
    assert kinds[:2] == [EventKind.QUEUED, EventKind.STARTED] and kinds[-1] is EventKind.FINISHED
    words = [text[e.char_offset : e.char_offset + e.char_length] for e in event_log.events if e.job_id == job and e.kind is EventKind.WORD]
    assert words == ["Exit", "23", "B", "then", "left"]


def test_stopping_the_playing_job_cancels_it_and_the_next_one_plays(paced: Engine, event_log: EventLog) -> None:
    first = paced.speak(LONG, opts())
    event_log.started(first)
    assert paced.stop(first) is True
    assert event_log.finished(first, timeout=2) is Outcome.CANCELLED
    second = paced.speak(SHORT, opts())
    assert event_log.finished(second) is Outcome.DONE


def test_stopping_a_queued_job_cancels_it_without_starting_it(paced: Engine, event_log: EventLog) -> None:
    playing = paced.speak(LONG, opts())
    queued = paced.speak(SHORT, opts())
    assert paced.stop(queued) is True
    assert event_log.finished(queued, timeout=2) is Outcome.CANCELLED
    assert EventKind.STARTED not in event_log.kinds(queued)
    paced.stop(playing)


def test_stop_of_an_unknown_or_finished_job_returns_false(fast: Engine, event_log: EventLog) -> None:
    job = fast.speak(SHORT, opts())
    event_log.finished(job)
    assert fast.stop(job) is False
    assert fast.stop(10**9) is False


def test_stop_all_cancels_the_playing_job_and_empties_the_queue(paced: Engine, event_log: EventLog) -> None:
    jobs = [paced.speak(LONG, opts()) for _ in range(3)]
    event_log.started(jobs[0])
    paced.stop_all()
    assert [event_log.finished(j, timeout=2) for j in jobs] == [Outcome.CANCELLED] * 3


def test_important_interrupts_and_cancels_text(paced: Engine, event_log: EventLog) -> None:
    text = paced.speak(LONG, opts("text"))
    event_log.started(text)
    important = paced.speak(SHORT, opts("important"))
    assert event_log.finished(text, timeout=2) is Outcome.CANCELLED
    assert event_log.finished(important) is Outcome.DONE


def test_important_postpones_a_message_which_is_spoken_afterwards(paced: Engine, event_log: EventLog) -> None:
    message = paced.speak(LONG, opts("message"))
    event_log.started(message)
    important = paced.speak(SHORT, opts("important"))
    assert event_log.finished(important) is Outcome.DONE
    assert event_log.finished(message) is Outcome.DONE
    assert event_log.index(important, EventKind.FINISHED) < event_log.index(message, EventKind.FINISHED)
    assert event_log.kinds(message).count(EventKind.STARTED) == 1


def test_important_jobs_never_interrupt_each_other(paced: Engine, event_log: EventLog) -> None:
    first = paced.speak(LONG, opts("important"))
    event_log.started(first)
    second = paced.speak(SHORT, opts("important"))
    assert event_log.finished(first) is Outcome.DONE
    assert event_log.finished(second) is Outcome.DONE


def test_message_cancels_playing_and_queued_text(paced: Engine, event_log: EventLog) -> None:
    playing = paced.speak(LONG, opts("text"))
    waiting = paced.speak(LONG, opts("text"))
    event_log.started(playing)
    message = paced.speak(SHORT, opts("message"))
    assert event_log.finished(playing, timeout=2) is Outcome.CANCELLED
    assert event_log.finished(waiting, timeout=2) is Outcome.CANCELLED
    assert event_log.finished(message) is Outcome.DONE


def test_text_waits_for_a_message_instead_of_interrupting_it(paced: Engine, event_log: EventLog) -> None:
    message = paced.speak(SHORT, opts("message"))
    event_log.started(message)
    text = paced.speak(SHORT, opts("text"))
    assert event_log.finished(message) is Outcome.DONE
    assert event_log.finished(text) is Outcome.DONE
    assert event_log.index(message, EventKind.FINISHED) < event_log.index(text, EventKind.STARTED)


def test_a_notification_is_dropped_when_speech_is_busy(paced: Engine, event_log: EventLog) -> None:
    text = paced.speak(LONG, opts("text"))
    event_log.started(text)
    note = paced.speak(SHORT, opts("notification"))
    assert event_log.finished(note, timeout=2) is Outcome.CANCELLED
    assert EventKind.STARTED not in event_log.kinds(note)
    paced.stop(text)


def test_a_notification_is_spoken_when_idle_and_cancelled_by_any_other_job(paced: Engine, event_log: EventLog) -> None:
    note = paced.speak(LONG, opts("notification"))
    event_log.started(note)
    text = paced.speak(SHORT, opts("text"))
    assert event_log.finished(note, timeout=2) is Outcome.CANCELLED
    assert event_log.finished(text) is Outcome.DONE


def test_only_the_newest_progress_report_waits_and_it_is_spoken(paced: Engine, event_log: EventLog) -> None:
    text = paced.speak(LONG, opts("message"))
    event_log.started(text)
    reports = [paced.speak(f"{n} percent", opts("progress")) for n in (10, 20, 30)]
    assert event_log.finished(reports[0], timeout=2) is Outcome.CANCELLED
    assert event_log.finished(reports[1], timeout=2) is Outcome.CANCELLED
    paced.stop(text)
    assert event_log.finished(reports[2]) is Outcome.DONE


def test_a_full_queue_answers_busy_and_keeps_serving(paced: Engine, event_log: EventLog) -> None:
    playing = paced.speak(LONG, opts("message"))
    event_log.started(playing)
    waiting = [paced.speak(SHORT, opts("message")) for _ in range(4)]
    with pytest.raises(Busy):
        paced.speak(SHORT, opts("message"))
    paced.stop_all()
    for job in [playing, *waiting]:
        event_log.finished(job, timeout=2)
    assert event_log.finished(paced.speak(SHORT, opts())) is Outcome.DONE


def test_a_full_queue_makes_room_for_a_more_urgent_job_by_dropping_the_least_urgent(paced: Engine, event_log: EventLog) -> None:
    playing = paced.speak(LONG, opts("important"))
    event_log.started(playing)
    waiting = [paced.speak(SHORT, opts("message")) for _ in range(3)] + [paced.speak(SHORT, opts("text"))]
    urgent = paced.speak(SHORT, opts("important"))
    assert event_log.finished(waiting[-1], timeout=2) is Outcome.CANCELLED
    paced.stop(playing)
    assert event_log.finished(urgent) is Outcome.DONE


def test_the_second_identical_request_is_a_cache_hit_with_identical_audio(fast: Engine, event_log: EventLog, tmp_path: Path) -> None:
    first = fast.speak("Turn right.", opts())
    event_log.finished(first)
    second = fast.speak("Turn right.", opts())
    assert event_log.finished(second) is Outcome.DONE
    status = fast.status()
    assert (status["cache_hits"], status["cache_misses"]) == (1, 1)
    fast.close()
    audio, _ = sf.read(tmp_path / "out.wav", dtype="int16")
    half = len(audio) // 2
    assert half > 0 and np.array_equal(audio[:half], audio[half:])
    words = [e for e in event_log.events if e.kind is EventKind.WORD]
    assert [(e.char_offset, e.char_length) for e in words if e.job_id == first] == [
        (e.char_offset, e.char_length) for e in words if e.job_id == second
    ]


def test_changing_volume_misses_the_cache(fast: Engine, event_log: EventLog) -> None:
    event_log.finished(fast.speak("Turn right.", opts()))
    event_log.finished(fast.speak("Turn right.", opts(volume=0.5)))
    assert fast.status()["cache_hits"] == 0


@pytest.mark.parametrize(
    ("text", "options", "error"),
    [
        ("", {}, InvalidText),
        ("   \n\t", {}, InvalidText),
        ("!!! ...", {}, InvalidText),
        ("x" * 201, {}, TextTooLong),
        ("bad \ud800 surrogate", {}, InvalidText),
        ("hello", {"voice": "nobody"}, UnknownVoice),
        ("<speak>unclosed", {"ssml": True}, InvalidText),
        ("<!DOCTYPE x [<!ENTITY a 'b'>]><speak>&a;</speak>", {"ssml": True}, InvalidText),
    ],
)
def test_bad_input_is_refused_with_its_error_and_the_engine_keeps_serving(
    fast: Engine, event_log: EventLog, text: str, options: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        fast.speak(text, opts(**options))
    assert event_log.finished(fast.speak(SHORT, opts())) is Outcome.DONE


def test_every_installed_voice_speaks(fast: Engine, event_log: EventLog) -> None:
    voices = [v.id for v in fast.voices()]
    assert {"placeholder", "placeholder-alt"} <= set(voices)
    for voice in voices:
        assert event_log.finished(fast.speak(SHORT, opts(voice=voice))) is Outcome.DONE


def test_the_same_text_gives_bit_identical_audio_across_engines(placeholder_catalog: SynthCatalog, tmp_path: Path) -> None:
    outputs = []
    for name in ("a.wav", "b.wav"):
        log = EventLog()
        engine = Engine(placeholder_catalog, WavSink(tmp_path / name))
        engine.subscribe(log)
        engine.start()
        log.finished(engine.speak(LONG, opts()))
        engine.close()
        outputs.append(sf.read(tmp_path / name, dtype="int16")[0])
    assert len(outputs[0]) > 22050 and np.array_equal(outputs[0], outputs[1])


def test_priority_enum_matches_the_dbus_contract() -> None:
    assert [p.value for p in Priority] == ["important", "message", "text", "notification", "progress"]
