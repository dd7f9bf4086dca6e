"""The Unix-socket front end: JSON lines in, event lines out (docs/socket-protocol.md), a thin layer over the engine."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import logging
import math
import os
import socket
import stat
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..config import SpeakOptions
from ..engine import EventKind, JobEvent, SpeechEngine
from ..errors import BadRequest, InvalidText, MynaError, SocketUnavailable
from . import const

_LOGGER = logging.getLogger(__name__)

READ_BLOCK = 64 * 1024
# Unsent bytes one connection may hold before it counts as stuck and is dropped.
MAX_OUTBOUND_BYTES = 1024 * 1024
# Request ids are echoed verbatim; a cap keeps a hostile id from amplifying every event line.
MAX_ID_CHARS = 256
_INTERNAL_MESSAGE = "internal error; see the daemon log"

_OPS_FIELDS: Mapping[str, frozenset[str]] = {
    "speak": frozenset({"id", "op", "text", "options"}),
    "stop": frozenset({"id", "op", "job", "all"}),
    "voices": frozenset({"id", "op"}),
    "status": frozenset({"id", "op"}),
}

RequestId = str | int | float | None


@dataclass(frozen=True)
class _Route:
    """Where a job's events go: the connection that queued it, tagged with its request id."""

    conn: "_Connection"
    request_id: RequestId


class _BadLine(Exception):
    """A line that is not a request; carries the error to answer and the id, if one was readable."""

    def __init__(self, error: MynaError, request_id: RequestId = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.request_id = request_id


class _Connection:
    """One client: a bounded outbound buffer on top of the stream writer."""

    def __init__(self, writer: asyncio.StreamWriter, max_outbound: int, name: str) -> None:
        self.writer = writer
        self.max_outbound = max_outbound
        self.name = name
        self.closed = False

    def send(self, event: Mapping[str, Any]) -> None:
        """Queue one event line; drop the connection if the client has stopped reading."""
        if self.closed or self.writer.is_closing():
            return
        try:
            line = json.dumps(event, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n"
        except (TypeError, ValueError):
            _LOGGER.exception("cannot encode a %s event", event.get("event"))
            line = json.dumps({"id": event.get("id"), "event": "error", "code": "Internal", "message": _INTERNAL_MESSAGE}) + "\n"
        # transport.write never blocks; it buffers.  The cap turns a stuck reader into a dropped
        # connection instead of unbounded memory.
        self.writer.write(line.encode("utf-8"))
        pending = self.writer.transport.get_write_buffer_size()
        if pending > self.max_outbound:
            _LOGGER.warning("dropping socket client %s: %d unsent bytes (limit %d)", self.name, pending, self.max_outbound)
            self.abort()

    def abort(self) -> None:
        """Close at once, discarding unsent data."""
        if not self.closed:
            self.closed = True
            self.writer.transport.abort()


class SocketFrontEnd:
    """Serve the JSON-lines protocol on a Unix stream socket."""

    def __init__(
        self,
        engine: SpeechEngine,
        path: str | os.PathLike[str],
        mode: int = const.SOCKET_MODE,
        group: str | int | None = None,
        *,
        max_line: int = const.MAX_LINE_BYTES,
        max_outbound: int = MAX_OUTBOUND_BYTES,
    ) -> None:
        """Listen at ``path`` with file ``mode``, owned by ``group`` (a name or gid) when given."""
        self._engine = engine
        self._path = os.fspath(path)
        self._mode = mode
        self._group = group
        self._max_line = max_line
        self._max_outbound = max_outbound
        self._server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._routes: dict[int, _Route] = {}
        self._clients: dict[asyncio.Task[None], _Connection] = {}
        self._inode: tuple[int, int] | None = None
        self._counter = 0

    @property
    def path(self) -> str:
        """The socket's path."""
        return self._path

    async def start(self) -> None:
        """Create the socket (replacing only a stale one) and start accepting clients."""
        self._loop = asyncio.get_running_loop()
        await self._clear_stale()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        bound = False
        try:
            sock.bind(self._path)
            bound = True
            # Permissions are fixed before listen(): until then every connect is refused, so
            # there is no moment when the umask's mode lets others in.
            os.chmod(self._path, self._mode)
            if self._group is not None:
                os.chown(self._path, -1, self._gid(self._group))
            sock.listen(16)
            sock.setblocking(False)
            st = os.stat(self._path)
            self._inode = (st.st_dev, st.st_ino)
            self._server = await asyncio.start_unix_server(self._serve, sock=sock, limit=READ_BLOCK)
        except (OSError, SocketUnavailable) as exc:
            sock.close()
            if bound:
                with contextlib.suppress(OSError):
                    os.unlink(self._path)
            self._inode = None
            if isinstance(exc, SocketUnavailable):
                raise
            raise SocketUnavailable(f"cannot listen on {self._path}: {exc.strerror or exc}") from None
        self._unsubscribe = self._engine.subscribe(self._on_engine_event)
        _LOGGER.info("serving the socket %s", self._path)

    async def stop(self) -> None:
        """Stop accepting, close every client, remove the socket file."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        server, self._server = self._server, None
        if server is not None:
            server.close()
        # Aborting ends each client's read loop with EOF, so its task finishes normally: a cancelled
        # client_connected_cb task makes Python 3.11's asyncio report a spurious error.
        for conn in list(self._clients.values()):
            conn.abort()
        if self._clients:
            _, stuck = await asyncio.wait(list(self._clients), timeout=5.0)
            for task in stuck:
                task.cancel()
        if server is not None:
            await server.wait_closed()
        self._routes.clear()
        self._remove_socket_file()

    # -- set-up helpers ----------------------------------------------------------------------

    async def _clear_stale(self) -> None:
        try:
            st = os.lstat(self._path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise SocketUnavailable(f"cannot inspect {self._path}: {exc.strerror}") from None
        if not stat.S_ISSOCK(st.st_mode):
            raise SocketUnavailable(f"{self._path} exists and is not a socket; refusing to replace it")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_unix_connection(self._path), timeout=2.0)
        except ConnectionRefusedError:
            _LOGGER.info("removing the stale socket %s", self._path)
            os.unlink(self._path)
            return
        except (OSError, asyncio.TimeoutError) as exc:
            raise SocketUnavailable(f"cannot tell whether {self._path} is in use: {exc}") from None
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        raise SocketUnavailable(f"another process is listening on {self._path}; is another mynad running?")

    @staticmethod
    def _gid(group: str | int) -> int:
        if isinstance(group, int):
            return group
        try:
            return grp.getgrnam(group).gr_gid
        except KeyError:
            raise SocketUnavailable(f"no such group {group!r} for the socket") from None

    def _remove_socket_file(self) -> None:
        if self._inode is None:
            return
        try:
            st = os.lstat(self._path)
            # Only remove the socket we created, not one a newer daemon put there since.
            if (st.st_dev, st.st_ino) == self._inode:
                os.unlink(self._path)
        except FileNotFoundError:
            pass
        except OSError:
            _LOGGER.warning("could not remove the socket %s", self._path, exc_info=True)
        self._inode = None

    # -- connections -------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._counter += 1
        conn = _Connection(writer, self._max_outbound, f"#{self._counter}")
        task = asyncio.current_task()
        assert task is not None
        self._clients[task] = conn
        _LOGGER.debug("socket client %s connected", conn.name)
        try:
            await self._read_lines(reader, conn)
        except ConnectionError:
            pass
        except Exception:
            _LOGGER.exception("socket client %s failed", conn.name)
        finally:
            self._clients.pop(task, None)
            # Its jobs keep playing (a client may queue and leave); only their events have nowhere to go.
            for job_id in [j for j, route in self._routes.items() if route.conn is conn]:
                del self._routes[job_id]
            conn.closed = True
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            _LOGGER.debug("socket client %s left", conn.name)

    async def _read_lines(self, reader: asyncio.StreamReader, conn: _Connection) -> None:
        """Split the stream into lines without ever buffering more than ``max_line`` bytes."""
        pending = bytearray()
        skipping = False
        while not conn.closed:
            block = await reader.read(READ_BLOCK)
            if not block:
                return
            start = 0
            while not conn.closed:
                end = block.find(b"\n", start)
                piece = block[start:] if end < 0 else block[start:end]
                if skipping:
                    if end >= 0:
                        skipping = False
                elif len(pending) + len(piece) > self._max_line:
                    # Answer as soon as the line is known to be too long, then drop the rest of it.
                    pending.clear()
                    skipping = end < 0
                    conn.send(self._error_event(None, BadRequest(f"line longer than {self._max_line} bytes")))
                elif end < 0:
                    pending += piece
                else:
                    line = bytes(pending) + piece
                    pending.clear()
                    self._handle_line(conn, line)
                if end < 0:
                    break
                start = end + 1

    # -- requests ----------------------------------------------------------------------------

    def _handle_line(self, conn: _Connection, line: bytes) -> None:
        line = line.rstrip(b"\r")
        if not line.strip():
            return  # blank lines are keep-alives from hand-typed sessions, not requests
        request_id: RequestId = None
        try:
            request = _parse(line)
            request_id = request.get("id")
            conn.send(self._dispatch(conn, request))
        except _BadLine as bad:
            conn.send(self._error_event(bad.request_id, bad.error))
        except MynaError as err:
            conn.send(self._error_event(request_id, err))
        except Exception:
            _LOGGER.exception("socket request failed")
            conn.send({"id": request_id, "event": "error", "code": "Internal", "message": _INTERNAL_MESSAGE})

    def _dispatch(self, conn: _Connection, request: Mapping[str, Any]) -> dict[str, Any]:
        request_id = request.get("id")
        op = request["op"]
        if op == "speak":
            text = request.get("text")
            if not isinstance(text, str):
                raise BadRequest("speak needs \"text\", a string")
            raw_options = request.get("options", {})
            if not isinstance(raw_options, dict):
                raise BadRequest("\"options\" must be an object")
            job_id = self._engine.speak(text, SpeakOptions.from_dict(raw_options))
            # Events of this job may already be scheduled on the loop; they run after this returns.
            self._routes[job_id] = _Route(conn, request_id)
            return {"id": request_id, "event": "queued", "job": job_id}
        if op == "stop":
            job, stop_all = request.get("job"), request.get("all")
            if stop_all is True and job is None:
                self._engine.stop_all()
                return {"id": request_id, "event": "result", "stopped": True}
            if (stop_all is None or stop_all is False) and isinstance(job, int) and not isinstance(job, bool):
                return {"id": request_id, "event": "result", "stopped": bool(self._engine.stop(job))}
            raise BadRequest("stop needs either \"job\" (an integer) or \"all\": true")
        if op == "voices":
            voices = [{"id": v.id, "name": v.name, "language": v.language} for v in self._engine.voices()]
            return {"id": request_id, "event": "result", "voices": voices}
        status = dict(self._engine.status())
        return {"id": request_id, "event": "result", "status": status}

    @staticmethod
    def _error_event(request_id: RequestId, err: MynaError) -> dict[str, Any]:
        return {"id": request_id, "event": "error", "code": err.public_code, "message": err.message}

    # -- engine events -----------------------------------------------------------------------

    def _on_engine_event(self, event: JobEvent) -> None:
        # Runs on the engine's worker thread (or a caller's): hop onto the loop that owns the routes.
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed; nobody is listening
            loop.call_soon_threadsafe(self._forward, event)

    def _forward(self, event: JobEvent) -> None:
        if event.kind is EventKind.QUEUED:
            return  # answered by the speak request itself, with its id
        if event.kind is EventKind.FINISHED:
            route = self._routes.pop(event.job_id, None)
        else:
            route = self._routes.get(event.job_id)
        if route is None:
            return  # a D-Bus job, or its client has left
        out: dict[str, Any] = {"id": route.request_id, "event": event.kind.value, "job": event.job_id}
        if event.kind is EventKind.WORD:
            out["offset"] = event.char_offset
            out["length"] = event.char_length
        elif event.kind is EventKind.FINISHED:
            out["outcome"] = event.outcome.value if event.outcome is not None else "failed"
            if event.error_code is not None:
                out["code"] = event.error_code
        route.conn.send(out)


def _parse(line: bytes) -> dict[str, Any]:
    """Decode one request line into a checked mapping; raise _BadLine."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        # Still echo the id when the rest of the line is readable, so the client can match the error.
        request_id = _salvage_id(line)
        raise _BadLine(InvalidText("the request is not valid UTF-8"), request_id) from None
    try:
        request = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise _BadLine(BadRequest("the line is not valid JSON")) from None
    if not isinstance(request, dict):
        raise _BadLine(BadRequest("a request must be a JSON object"))
    request_id = request.get("id")
    if not _valid_id(request_id):
        raise _BadLine(BadRequest(f"\"id\" must be a string of at most {MAX_ID_CHARS} characters or a number"))
    op = request.get("op")
    allowed = _OPS_FIELDS.get(op) if isinstance(op, str) else None
    if allowed is None:
        raise _BadLine(BadRequest(f"\"op\" must be one of {', '.join(_OPS_FIELDS)}"), request_id)
    unknown = sorted(set(request) - allowed)
    if unknown:
        raise _BadLine(BadRequest(f"unknown field {unknown[0][:40]!r} for op {op!r}"), request_id)
    return request


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _valid_id(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        # Lone surrogates (from \ud800 escapes) could not be written back as UTF-8.
        return len(value) <= MAX_ID_CHARS and not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    return False


def _salvage_id(line: bytes) -> RequestId:
    try:
        request = json.loads(line.decode("utf-8", errors="replace"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    request_id = request.get("id") if isinstance(request, dict) else None
    return request_id if _valid_id(request_id) and not (isinstance(request_id, str) and "\ufffd" in request_id) else None
