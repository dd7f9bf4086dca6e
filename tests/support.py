"""Test support shared across folders: a recorder of engine events."""

from __future__ import annotations

import threading
from typing import Callable

from myna.engine import EventKind, JobEvent, Outcome


class EventLog:
    """Collects engine events from the worker thread and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[JobEvent] = []
        self._cond = threading.Condition()

    def __call__(self, event: JobEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[JobEvent], bool], timeout: float = 20.0) -> JobEvent:
        """Block until an event matching ``predicate`` has arrived; return it."""
        with self._cond:
            found: list[JobEvent] = []

            def seen() -> bool:
                found[:] = [e for e in self.events if predicate(e)]
                return bool(found)

            if not self._cond.wait_for(seen, timeout):
                raise AssertionError(f"no matching event within {timeout}s; saw {self.events}")
            return found[0]

    def started(self, job: int, timeout: float = 20.0) -> JobEvent:
        """Wait for the job's STARTED."""
        return self.wait_for(lambda e: e.job_id == job and e.kind is EventKind.STARTED, timeout)

    def finished(self, job: int, timeout: float = 20.0) -> Outcome:
        """Wait for the job's FINISHED and return its outcome."""
        event = self.wait_for(lambda e: e.job_id == job and e.kind is EventKind.FINISHED, timeout)
        assert event.outcome is not None
        return event.outcome

    def kinds(self, job: int) -> list[EventKind]:
        """The kinds of the job's events so far, in order."""
        with self._cond:
            return [e.kind for e in self.events if e.job_id == job]

    def index(self, job: int, kind: EventKind) -> int:
        """Position of the job's first event of ``kind`` in the whole log."""
        with self._cond:
            return next(i for i, e in enumerate(self.events) if e.job_id == job and e.kind is kind)
