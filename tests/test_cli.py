"""The `myna` command line without a daemon: normalize, phonemize, board, say -o, and its errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import soundfile as sf

REPO = Path(__file__).resolve().parents[1]


def myna(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "myna.cli", *args], input=stdin, capture_output=True, text=True, timeout=60, cwd=REPO
    )


def test_normalize_prints_the_spoken_form() -> None:
    result = myna("normalize", "Turn left in 300 m onto Main St.")
    assert result.returncode == 0
    assert result.stdout == "turn left in three hundred meters onto main street\n"


def test_normalize_dash_reads_each_stdin_line() -> None:
    result = myna("normalize", "-", stdin="Battery 15%\nI-95 N\n")
    assert result.stdout.splitlines() == ["battery fifteen percent", "i ninety five north"]


def test_phonemize_prints_words_separated_by_bars() -> None:
    result = myna("phonemize", "Read it")
    assert result.returncode == 0
    assert result.stdout.strip() == "R IY1 D | IH1 T"


def test_phonemize_verbose_shows_written_spoken_and_phonemes() -> None:
    result = myna("phonemize", "-v", "5 km")
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert rows == [["5", "five", "F AY1 V"], ["km", "kilometers", "K AH0 L AA1 M AH2 T ER0 Z"]]


def test_phonemize_takes_ssml() -> None:
    result = myna("phonemize", "--ssml", '<speak><sub alias="doctor">Dr.</sub></speak>')
    assert result.stdout.strip() == "D AA1 K T ER0"


def test_invalid_ssml_is_one_line_on_stderr_and_exit_2() -> None:
    result = myna("phonemize", "--ssml", "<speak>unclosed")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("myna: ")]
    assert len(errors) == 1 and errors[0].startswith("myna: InvalidText: SSML: <speak> is not closed")
    assert "Traceback" not in result.stderr


def test_board_names_the_profile_and_why() -> None:
    result = myna("board", "--root", str(REPO / "tests" / "fixtures" / "boards" / "pi5"), "--arch", "aarch64")
    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == "board:   pi5"
    assert "brcm,bcm2712" in result.stdout


def test_say_to_a_wav_file_needs_no_daemon(tmp_path: Path) -> None:
    out = tmp_path / "hello.wav"
    result = myna("--board", "pi-zero-2-w", "say", "ETA 5:45 PM.", "-o", str(out))
    assert result.returncode == 0, result.stderr
    audio, rate = sf.read(out, dtype="int16")
    assert rate == 22050 and len(audio) > rate // 2 and abs(audio).max() > 1000


def test_unknown_voice_is_a_clear_error() -> None:
    result = myna("say", "hi", "-v", "nobody", "--local")
    assert result.returncode == 2
    assert "UnknownVoice" in result.stderr and "Traceback" not in result.stderr
