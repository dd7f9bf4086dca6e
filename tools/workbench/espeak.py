"""eSpeak NG as a separate process (GPL-3: run, never imported or linked): text → IPA clauses, Piper's way.

Piper phonemizes with libespeak-ng's ``espeak_TextToPhonemes`` in IPA mode, one clause at a time, and
appends the clause's terminator (``. ? ! , : ;``) as a phoneme of its own, a space after ``, : ;``;
a sentence terminator (``. ? !``) ends the sentence, and Piper synthesizes each sentence separately.
The ``espeak-ng`` program prints the IPA of each clause on a line but drops the terminators, so this
module cuts the text into clauses itself (punctuation followed by white space or the end, as eSpeak
does) and feeds each clause as one line to a single long-lived ``espeak-ng --ipa`` process, which
reads standard input line by line. A sentinel line after each clause marks where its output ends.
Starting ``espeak-ng`` costs tens of milliseconds (it loads its voice data), so a process per call
would dominate any timing; a round trip through the open pipes costs well under a millisecond.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import threading
import unicodedata
from dataclasses import dataclass
from typing import IO

_LOGGER = logging.getLogger(__name__)

ESPEAK = "espeak-ng"
# A made-up word: its IPA line (learned at start-up) marks the end of each clause's output.
_SENTINEL = "mynasentinelzq"
# Language-switch flags such as "(en)" or "(fr)" around foreign words; Piper removes them.
_LANG_SWITCH = re.compile(r"\([^)]*\)")
# A clause ends at a run of punctuation, optionally closed by quotes or brackets, before white space
# or the end of the text.
_CLAUSE_END = re.compile(r"([.?!,:;]+)([\"'”’)\]]*)(?=\s|$)")
SENTENCE_TERMINATORS = frozenset(".?!")
# eSpeak adds a space after these (they end a clause, not a sentence); Piper keeps it.
_SPACED_TERMINATORS = frozenset(",:;")


class EspeakError(RuntimeError):
    """espeak-ng is missing or stopped answering."""


@dataclass(frozen=True)
class Clause:
    """One clause of the input text, as eSpeak would cut it."""

    text: str
    """The clause's words, terminator included (eSpeak sees the same characters as in the full text)."""
    terminator: str
    """``.``, ``?``, ``!``, ``,``, ``:``, ``;`` or empty (end of text without punctuation)."""

    @property
    def ends_sentence(self) -> bool:
        """True when the terminator ends a sentence."""
        return self.terminator in SENTENCE_TERMINATORS


def _terminator(run: str) -> str:
    # "?!" and "!?" are questions/exclamations to eSpeak; an ellipsis breaks the clause with no terminator.
    if run.startswith("..") and not set(run) & set("?!"):
        return ""
    for mark in "?!.;:,":
        if mark in run:
            return mark
    return ""


def split_clauses(text: str) -> list[Clause]:
    """Cut ``text`` into clauses at punctuation followed by white space or the end of the text.

    As in eSpeak, a full stop followed by a lower-case word does not end the clause (``approx. two``).
    """
    text = " ".join(text.split())
    clauses: list[Clause] = []
    start = 0
    for match in _CLAUSE_END.finditer(text):
        run = match.group(1)
        rest = text[match.end():].lstrip()
        if run == "." and rest[:1].islower():
            continue
        piece = text[start:match.end()].strip()
        if piece:
            clauses.append(Clause(piece, _terminator(run)))
        start = match.end()
    tail = text[start:].strip()
    if tail:
        clauses.append(Clause(tail, ""))
    return clauses


def _is_punct_only(text: str) -> bool:
    return all(unicodedata.category(ch)[0] in "PZS" for ch in text)


class EspeakProcess:
    """One long-lived ``espeak-ng -q --ipa -v VOICE`` reading clauses line by line from a pipe."""

    def __init__(self, voice: str = "en-us", executable: str = ESPEAK, data_path: str | None = None) -> None:
        """``data_path``: a folder holding ``espeak-ng-data`` to use instead of the system's (``--path``)."""
        exe = shutil.which(executable)
        if exe is None:
            raise EspeakError(f"{executable} not found; install it with: apt-get install -y espeak-ng")
        stdbuf = shutil.which("stdbuf")
        if stdbuf is None:
            raise EspeakError("stdbuf (coreutils) not found: espeak-ng's output would stay buffered in the pipe")
        self.voice = voice
        # stdbuf -oL: espeak-ng writes with stdio, which fully buffers a pipe unless told otherwise.
        self._argv = [stdbuf, "-oL", exe, "-q", "--ipa", "-v", voice] + ([f"--path={data_path}"] if data_path else [])
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._sentinel_ipa = ""
        self._start()

    def _start(self) -> None:
        self._proc = subprocess.Popen(
            self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, encoding="utf-8", bufsize=1,
        )
        self._sentinel_ipa = ""
        self._sentinel_ipa = self._ask(_SENTINEL, sentinel=False)[0]

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        if self._proc is None or self._proc.stdin is None or self._proc.stdout is None:
            raise EspeakError("espeak-ng is not running")
        return self._proc.stdin, self._proc.stdout

    def _ask(self, line: str, sentinel: bool = True) -> list[str]:
        stdin, stdout = self._pipes()
        stdin.write(line + "\n" + (_SENTINEL + "\n" if sentinel else ""))
        stdin.flush()
        lines: list[str] = []
        while True:
            out = stdout.readline()
            if not out:
                raise EspeakError(f"espeak-ng stopped (exit status {self._proc.poll() if self._proc else None})")
            out = out.strip()
            if not sentinel:
                return [out]
            if out == self._sentinel_ipa:
                return lines
            if out:
                lines.append(out)

    def clause_ipa(self, clause_text: str) -> str:
        """IPA of one clause, language flags removed.

        eSpeak may cut a clause again where it sees no punctuation to us (a very long clause); Piper
        then joins the pieces with nothing between them, and so does this.
        """
        line = " ".join(clause_text.split())
        if not line or _is_punct_only(line):
            return ""
        with self._lock:
            try:
                lines = self._ask(line)
            except (EspeakError, OSError, ValueError):
                _LOGGER.warning("espeak-ng failed; restarting it once")
                self.close()
                self._start()
                lines = self._ask(line)
        return _LANG_SWITCH.sub("", "".join(lines)).strip()

    def close(self) -> None:
        """Stop the process."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            if proc.stdout is not None:
                proc.stdout.close()

    def __enter__(self) -> "EspeakProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EspeakPhonemizer:
    """Text → sentences of phoneme characters, as Piper builds them for an ``espeak`` voice."""

    def __init__(self, voice: str = "en-us", data_path: str | None = None) -> None:
        self._process = EspeakProcess(voice, data_path=data_path)

    def phonemize(self, text: str) -> list[list[str]]:
        """Return one list of phoneme characters (NFD-decomposed, punctuation kept) per sentence."""
        sentences: list[list[str]] = []
        current: list[str] = []
        for clause in split_clauses(text):
            # A clause ended without a terminator (an ellipsis) runs straight into the next one, as in Piper.
            current.extend(unicodedata.normalize("NFD", self._process.clause_ipa(clause.text)))
            if clause.terminator:
                current.append(clause.terminator)
                if clause.terminator in _SPACED_TERMINATORS:
                    current.append(" ")
            if clause.ends_sentence:
                sentences.append(current)
                current = []
        if current:
            sentences.append(current)
        return [s for s in sentences if any(ch.strip() for ch in s)]

    def close(self) -> None:
        """Stop espeak-ng."""
        self._process.close()

    def __enter__(self) -> "EspeakPhonemizer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
