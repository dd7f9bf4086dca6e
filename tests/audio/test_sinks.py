"""Audio sinks: ALSA through a file PCM, WAV round trips, null pacing, URI parsing, backend choice."""

from __future__ import annotations

import errno
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import soundfile

from myna.audio.null import NullSink
from myna.audio.sink import Sink, SinkKind, SinkSpec, check_samples, open_sink
from myna.audio.wav import WavSink
from myna.errors import AudioError, ConfigError

if TYPE_CHECKING:
    # Annotations only: tests/ has no __init__.py, so conftest is not importable as a package.
    from conftest import FilePcm

RATE = 22050


def _noise(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-32768, 32767, n, dtype=np.int16, endpoint=True)


def _chunks(samples: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    out, pos = [], 0
    for size in sizes:
        out.append(samples[pos : pos + size])
        pos += size
    assert pos == samples.shape[0]
    return out


# -- SinkSpec ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "kind", "target"),
    [
        ("alsa", SinkKind.ALSA, None),
        ("alsa:default", SinkKind.ALSA, "default"),
        ("alsa:hw:0,0", SinkKind.ALSA, "hw:0,0"),
        ("alsa:plughw:CARD=Headphones,DEV=0", SinkKind.ALSA, "plughw:CARD=Headphones,DEV=0"),
        ("  ALSA:dmix  ", SinkKind.ALSA, "dmix"),
        ("wav:/tmp/out.wav", SinkKind.WAV, "/tmp/out.wav"),
        ("wav:relative/out.wav", SinkKind.WAV, "relative/out.wav"),
        ("wav:C:odd:name.wav", SinkKind.WAV, "C:odd:name.wav"),
        ("null", SinkKind.NULL, None),
        ("null:realtime", SinkKind.NULL, "realtime"),
    ],
)
def test_sinkspec_parses(uri: str, kind: SinkKind, target: str | None) -> None:
    spec = SinkSpec.parse(uri)
    assert spec == SinkSpec(kind, target)
    assert SinkSpec.parse(spec.to_uri()) == spec


@pytest.mark.parametrize(
    "uri",
    ["", "   ", "alsa:", "wav", "wav:", "null:", "null:fast", "pulse", "pulse:x", "file:/x.wav",
     "alsa:hw\n0", "wav:/tmp/a\x00b", 42, None],
)
def test_sinkspec_rejects(uri: Any) -> None:
    with pytest.raises(ConfigError):
        SinkSpec.parse(uri)


def test_sinkspec_is_frozen() -> None:
    spec = SinkSpec.parse("null")
    with pytest.raises(AttributeError):
        spec.kind = SinkKind.WAV  # type: ignore[misc]


# -- open_sink -------------------------------------------------------------------------


def test_open_sink_builds_wav_and_null(tmp_path: Path) -> None:
    wav = open_sink(f"wav:{tmp_path / 'a.wav'}", period_frames=128, periods=4, default_alsa_device="x")
    assert isinstance(wav, WavSink) and wav.buffer_frames == 128
    null = open_sink(SinkSpec.parse("null"), period_frames=128, periods=4, default_alsa_device="x")
    assert isinstance(null, NullSink) and not null.realtime
    assert open_sink("null:realtime", 128, 4, "x").realtime  # type: ignore[attr-defined]
    for sink in (wav, null):
        assert isinstance(sink, Sink)


@pytest.mark.parametrize(("period_frames", "periods"), [(0, 4), (-1, 4), (256, 1)])
def test_open_sink_rejects_bad_buffering(period_frames: int, periods: int) -> None:
    with pytest.raises(ConfigError):
        open_sink("null", period_frames, periods, "default")


def test_open_sink_alsa_uses_profile_device_when_unnamed() -> None:
    pytest.importorskip("alsaaudio")
    from myna.audio.alsa import AlsaSink

    sink = open_sink("alsa", period_frames=256, periods=4, default_alsa_device="plughw:CARD=X")
    assert isinstance(sink, AlsaSink) and sink.device == "plughw:CARD=X"
    assert isinstance(sink, Sink)
    named = open_sink("alsa:dmix", period_frames=256, periods=4, default_alsa_device="plughw:CARD=X")
    assert isinstance(named, AlsaSink) and named.device == "dmix"


def test_open_sink_without_pyalsaaudio_fails_only_for_alsa(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A None entry in sys.modules makes "import alsaaudio" raise ImportError.
    monkeypatch.setitem(sys.modules, "alsaaudio", None)
    monkeypatch.delitem(sys.modules, "myna.audio.alsa", raising=False)
    with pytest.raises(AudioError, match="pyalsaaudio"):
        open_sink("alsa:default", 256, 4, "default")
    assert isinstance(open_sink("null", 256, 4, "default"), NullSink)
    assert isinstance(open_sink(f"wav:{tmp_path / 'x.wav'}", 256, 4, "default"), WavSink)


def test_check_samples_rejects_wrong_arrays() -> None:
    for bad in (np.zeros(4, np.float32), np.zeros((4, 1), np.int16), [1, 2, 3]):
        with pytest.raises(ValueError, match="int16"):
            check_samples(bad)  # type: ignore[arg-type]
    ok = np.zeros(3, np.int16)
    assert check_samples(ok) is ok


# -- ALSA through a file PCM -----------------------------------------------------------


def _alsa(device: str, period: int = 256, periods: int = 4) -> Any:
    from myna.audio.alsa import AlsaSink

    return AlsaSink(device, period_frames=period, periods=periods)


def test_alsa_is_bit_exact_including_partial_period(file_pcm: FilePcm) -> None:
    sink = _alsa(file_pcm.device, period=256)
    sink.open(RATE)
    assert sink.period_frames == 256  # what ALSA granted
    audio = _noise(256 * 7 + 100)
    for chunk in _chunks(audio, [1, 255, 300, 0, 512, 700, 1, 24 + 99]):
        sink.write(chunk)
    sink.drain()
    sink.close()
    got = file_pcm.samples(RATE)
    assert got.shape == audio.shape  # exact tail, no silence padding
    np.testing.assert_array_equal(got, audio)
    assert sink.xruns == 0


def test_alsa_copies_the_callers_array(file_pcm: FilePcm) -> None:
    sink = _alsa(file_pcm.device)
    sink.open(RATE)
    audio = _noise(100)
    scratch = audio.copy()
    sink.write(scratch)  # stays in the partial period
    scratch[:] = 0  # the caller reuses its buffer at once
    sink.close()
    np.testing.assert_array_equal(file_pcm.samples(RATE), audio)


def test_alsa_drop_discards_pending_and_keeps_working(file_pcm: FilePcm) -> None:
    sink = _alsa(file_pcm.device, period=256)
    sink.open(RATE)
    first = _noise(512, seed=1)
    pending = _noise(200, seed=2)
    after = _noise(300, seed=3)
    sink.write(first)
    sink.write(pending)  # under a period: still in the sink's ring
    sink.drop()
    sink.write(after)  # the PCM was left in SETUP; this write re-prepares it
    sink.drain()
    sink.close()
    # The null slave consumes instantly, so what reached ALSA before drop() is in the file;
    # what the sink still held must not be.
    np.testing.assert_array_equal(file_pcm.samples(RATE), np.concatenate([first, after]))


def test_alsa_drop_and_drain_in_any_state(file_pcm: FilePcm) -> None:
    sink = _alsa(file_pcm.device, period=256)
    sink.drop()  # not open yet: nothing to do
    sink.open(RATE)
    sink.drop()  # PREPARED
    sink.drop()  # SETUP
    sink.drain()  # nothing pending
    audio = _noise(600)
    sink.write(audio)
    sink.drain()  # leaves SETUP
    sink.drop()
    sink.write(audio)
    sink.drain()
    sink.close()
    np.testing.assert_array_equal(file_pcm.samples(RATE), np.concatenate([audio, audio]))


def test_alsa_open_is_idempotent_and_reopens_at_another_rate(file_pcm: FilePcm) -> None:
    sink = _alsa(file_pcm.device)
    sink.open(RATE)
    pcm = sink._pcm
    sink.open(RATE)
    assert sink._pcm is pcm
    a = _noise(1000, seed=4)
    sink.write(a)
    sink.open(16000)  # drains the 22050 Hz audio, then reopens
    assert sink._pcm is not pcm and sink.sample_rate == 16000
    b = _noise(777, seed=5)
    sink.write(b)
    sink.close()
    np.testing.assert_array_equal(file_pcm.samples(RATE), a)
    np.testing.assert_array_equal(file_pcm.samples(16000), b)


def test_alsa_steady_state_writes_allocate_nothing(file_pcm: FilePcm) -> None:
    sink = _alsa(file_pcm.device, period=1024)
    sink.open(RATE)
    chunk = _noise(5000)  # not a multiple of the period: exercises the carry-over path
    for _ in range(20):
        sink.write(chunk)
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(200):
            sink.write(chunk)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        sink.drop()
        sink.close()
    # A copy of one period would be 2 KiB and of one chunk 10 KiB; views and ints are
    # transient, so nothing stays and the peak stays far below one period.
    assert current - base < 512, current - base
    assert peak - base < 1024, peak - base


def test_alsa_bad_device_names_the_device() -> None:
    pytest.importorskip("alsaaudio")
    sink = _alsa("myna_no_such_pcm")
    with pytest.raises(AudioError, match="myna_no_such_pcm"):
        sink.open(RATE)
    with pytest.raises(AudioError, match="not open"):
        sink.write(np.zeros(10, np.int16))


def test_alsa_config_is_reread_per_open(make_file_pcm: Callable[[str], FilePcm]) -> None:
    # Guards the conftest's premise: a new ALSA_CONFIG_PATH is honoured in the same process.
    one = make_file_pcm("mynaone")
    sink = _alsa(one.device)
    sink.open(RATE)
    sink.write(_noise(10))
    sink.close()
    two = make_file_pcm("mynatwo")
    sink = _alsa(two.device)
    sink.open(RATE)
    sink.write(_noise(20))
    sink.close()
    assert one.samples(RATE).shape == (10,) and two.samples(RATE).shape == (20,)


def test_alsa_first_write_at_marks_the_first_device_write(file_pcm: FilePcm) -> None:
    sink = _alsa(file_pcm.device, period=256)
    sink.open(RATE)
    sink.mark()
    sink.write(_noise(100))
    assert sink.first_write_at is None  # still short of a period: nothing reached ALSA
    before = time.monotonic()
    sink.write(_noise(200))
    stamp = sink.first_write_at
    assert stamp is not None and before <= stamp <= time.monotonic()
    sink.write(_noise(512))
    assert sink.first_write_at == stamp  # only the first write after mark() counts
    sink.mark()
    assert sink.first_write_at is None
    sink.drain()  # the tail is a real device write too
    assert sink.first_write_at is not None and sink.first_write_at >= stamp
    sink.close()


def test_alsa_close_flushes_the_tail(file_pcm: FilePcm) -> None:
    sink = _alsa(file_pcm.device)
    sink.open(RATE)
    audio = _noise(300)
    sink.write(audio)
    sink.close()
    sink.close()  # idempotent
    np.testing.assert_array_equal(file_pcm.samples(RATE), audio)


# Fault injection: a file PCM over the null slave never underruns (its pointer moves on
# write), and there is no card, no snd-aloop and no snd-dummy here, so a real xrun cannot
# be provoked.  These tests wrap the real PCM and make write() report what pyalsaaudio
# 0.11 reports (return -EPIPE after re-preparing; or raise ALSAAudioError as 0.10 did
# and as it does for -ESTRPIPE), then check the sink recovers and the file stays exact.


class _FaultyPcm:
    """Delegates to a real pyalsaaudio PCM; ``write`` follows a script of faults first."""

    def __init__(self, pcm: Any, script: list[Any]) -> None:
        self._pcm = pcm
        self.script = script
        self.drops = 0

    def write(self, data: np.ndarray) -> int:
        if self.script:
            fault = self.script.pop(0)
            if isinstance(fault, BaseException):
                raise fault
            if fault == "short":
                half = max(1, data.shape[0] // 2)
                return int(self._pcm.write(data[:half]))
            return int(fault)
        return int(self._pcm.write(data))

    def drop(self) -> int:
        self.drops += 1
        return int(self._pcm.drop())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pcm, name)


def test_fault_injection_underrun_return_is_recovered(file_pcm: FilePcm) -> None:
    sink = _alsa(file_pcm.device, period=256)
    sink.open(RATE)
    faulty = _FaultyPcm(sink._pcm, [-errno.EPIPE, -errno.EPIPE])
    sink._pcm = faulty
    audio = _noise(256 * 3 + 10)
    sink.write(audio)
    sink.drain()
    sink.close()
    assert sink.xruns == 2
    np.testing.assert_array_equal(file_pcm.samples(RATE), audio)


def test_fault_injection_underrun_exception_and_suspend_are_recovered(file_pcm: FilePcm) -> None:
    import alsaaudio

    sink = _alsa(file_pcm.device, period=256)
    sink.open(RATE)
    faulty = _FaultyPcm(
        sink._pcm,
        [
            alsaaudio.ALSAAudioError(f"Broken pipe [{file_pcm.device}]"),
            alsaaudio.ALSAAudioError(f"Streams pipe error [{file_pcm.device}]"),
            "short",
        ],
    )
    sink._pcm = faulty
    audio = _noise(256 * 4)
    sink.write(audio)
    sink.close()
    assert (sink.xruns, sink.resets) == (1, 1)
    assert faulty.drops == 2  # each raised error reset the stream via drop()
    np.testing.assert_array_equal(file_pcm.samples(RATE), audio)


def test_fault_injection_persistent_failure_raises(file_pcm: FilePcm) -> None:
    sink = _alsa(file_pcm.device, period=256)
    sink.open(RATE)
    sink._pcm = _FaultyPcm(sink._pcm, [-errno.EPIPE] * 50)
    with pytest.raises(AudioError, match=file_pcm.device):
        sink.write(_noise(256))
    assert sink.xruns == sink.max_retries + 1
    sink.drop()
    sink.close()


# -- WAV -------------------------------------------------------------------------------


def test_wav_round_trip_is_bit_exact(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    sink = WavSink(path, buffer_frames=256)
    sink.open(RATE)
    audio = _noise(256 * 5 + 17)
    scratch = audio.copy()
    for chunk in _chunks(scratch, [3, 600, 0, 256, 438]):
        sink.write(chunk)
    scratch[:] = 0  # the sink copied what it kept
    sink.close()
    data, rate = soundfile.read(path, dtype="int16")
    info = soundfile.info(str(path))
    assert (rate, info.subtype, info.channels) == (RATE, "PCM_16", 1)
    np.testing.assert_array_equal(data, audio)
    assert isinstance(sink, Sink)


def test_wav_drop_discards_buffered_samples(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    sink = WavSink(path, buffer_frames=256)
    sink.open(RATE)
    kept = _noise(512, seed=1)
    sink.write(kept)  # two full buffers: on disk
    sink.write(_noise(100, seed=2))  # buffered only
    sink.drop()
    tail = _noise(50, seed=3)
    sink.write(tail)
    sink.drain()
    sink.close()
    data, _ = soundfile.read(path, dtype="int16")
    np.testing.assert_array_equal(data, np.concatenate([kept, tail]))


def test_wav_rate_change(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    sink = WavSink(path)
    sink.open(RATE)
    sink.open(16000)  # nothing written yet: the file restarts at the new rate
    sink.open(16000)
    audio = _noise(10)
    sink.write(audio)
    with pytest.raises(AudioError, match="one file per rate"):
        sink.open(RATE)
    sink.close()
    data, rate = soundfile.read(path, dtype="int16")
    assert rate == 16000
    np.testing.assert_array_equal(data, audio)
    sink.open(RATE)  # after close: a fresh file
    sink.close()
    assert soundfile.info(str(path)).frames == 0


def test_wav_unwritable_path_is_an_audio_error(tmp_path: Path) -> None:
    sink = WavSink(tmp_path / "missing" / "out.wav")
    with pytest.raises(AudioError, match="missing"):
        sink.open(RATE)


def test_wav_first_write_at(tmp_path: Path) -> None:
    sink = WavSink(tmp_path / "out.wav")
    sink.open(RATE)
    sink.mark()
    sink.write(np.zeros(0, np.int16))
    assert sink.first_write_at is None
    sink.write(_noise(5))
    assert sink.first_write_at is not None
    sink.close()


# -- null ------------------------------------------------------------------------------


def test_null_discards_and_counts() -> None:
    sink = NullSink()
    sink.open(RATE)
    start = time.monotonic()
    sink.write(_noise(RATE * 10))  # ten seconds of audio, no pacing: instant
    sink.drain()
    assert time.monotonic() - start < 1.0
    assert sink.frames_written == RATE * 10
    assert sink.first_write_at is not None
    sink.close()
    assert isinstance(sink, Sink)


def test_null_realtime_paces_writes_and_drain() -> None:
    sink = NullSink(realtime=True, lead_s=0.0)
    sink.open(8000)
    start = time.monotonic()
    for _ in range(4):
        sink.write(np.zeros(400, np.int16))  # 50 ms each
    sink.drain()
    elapsed = time.monotonic() - start
    assert 0.18 <= elapsed < 1.0, elapsed
    sink.write(np.zeros(8000, np.int16))
    sink.drop()  # forgets the backlog: drain returns at once
    start = time.monotonic()
    sink.drain()
    assert time.monotonic() - start < 0.05
    sink.close()
