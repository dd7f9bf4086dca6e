"""The D-Bus front end: ``org.myna.Speech1`` on the system (or session) bus, a thin layer over the engine."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Annotated, Any, Awaitable, Callable, Mapping, TypeVar

from dbus_fast import introspection as intr
from dbus_fast import BusType, DBusError, NameFlag, RequestNameReply, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusBool, DBusDict, DBusSignature, DBusStr, DBusUInt64
from dbus_fast.service import ServiceInterface, dbus_method, dbus_signal

from ..bundles import MAX_PATH_CHARS
from ..config import MAX_VOICE_ID, SpeakOptions
from ..engine import EventKind, JobEvent, SpeechEngine
from ..errors import DBusUnavailable, InvalidOption, MynaError
from . import const

_LOGGER = logging.getLogger(__name__)

_T = TypeVar("_T")

# Accepted D-Bus signatures per option.  Numeric options also take integer types because
# common clients send integers for whole numbers (gdbus ``<2>`` is int32, busctl ``i 2``);
# booleans are refused even though D-Bus "b" is an integer on the wire.
_INTEGER_SIGNATURES = frozenset("ynqiuxt")
_NUMBER_SIGNATURES = frozenset({"d"}) | _INTEGER_SIGNATURES
OPTION_SIGNATURES: Mapping[str, frozenset[str]] = {
    "voice": frozenset({"s"}),
    "priority": frozenset({"s"}),
    "rate": _NUMBER_SIGNATURES,
    "pitch": _NUMBER_SIGNATURES,
    "volume": _NUMBER_SIGNATURES,
    "ssml": frozenset({"b"}),
}

VoiceTuple = Annotated[tuple[str, str, str], DBusSignature("(sss)")]
VoiceList = Annotated[list[tuple[str, str, str]], DBusSignature("a(sss)")]
FinishedArgs = Annotated[tuple[int, str], DBusSignature("ts")]
WordArgs = Annotated[tuple[int, int, int], DBusSignature("tuu")]
# dbus-fast cannot read a bare ``None`` return annotation; an empty signature says "no reply body".
NoReply = Annotated[None, DBusSignature("")]

# Names for arguments dbus-fast leaves anonymous (return values, signal args); shown by introspection.
_ARG_NAMES: Mapping[str, tuple[str, ...]] = {
    "Speak": ("text", "options", "job_id"),
    "Stop": ("job_id", "stopped"),
    "ListVoices": ("voices",),
    "GetStatus": ("status",),
    "InstallVoice": ("path", "voice_id"),
    "RemoveVoice": ("voice_id",),
    "JobStarted": ("job_id",),
    "JobFinished": ("job_id", "outcome"),
    "WordBoundary": ("job_id", "char_offset", "char_length"),
}

_INTERNAL_MESSAGE = "internal error; see the daemon log"
_UINT32_MAX = 0xFFFFFFFF


def options_from_variants(raw: Mapping[str, Any]) -> SpeakOptions:
    """Unwrap an ``a{sv}`` of options, check each value's D-Bus type, then validate; raise InvalidOption."""
    plain: dict[str, Any] = {}
    for name, value in raw.items():
        allowed = OPTION_SIGNATURES.get(name)
        if allowed is None:
            known = ", ".join(sorted(OPTION_SIGNATURES))
            raise InvalidOption(f"unknown option {name[:40]!r}; known: {known}")
        if not isinstance(value, Variant) or value.signature not in allowed:
            got = value.signature if isinstance(value, Variant) else "?"
            want = "d" if "d" in allowed else next(iter(allowed))
            raise InvalidOption(f"option {name!r} must be of D-Bus type '{want}', not '{got}'")
        plain[name] = float(value.value) if value.signature in _INTEGER_SIGNATURES else value.value
    return SpeakOptions.from_dict(plain)


def status_to_variants(status: Mapping[str, Any]) -> dict[str, Variant]:
    """Wrap the engine's plain status values for ``a{sv}``."""
    out: dict[str, Variant] = {}
    for key, value in status.items():
        # bool first: it is an int subclass.
        if isinstance(value, bool):
            out[key] = Variant("b", value)
        elif isinstance(value, int):
            out[key] = Variant("x", value)
        elif isinstance(value, float):
            out[key] = Variant("d", value)
        else:
            out[key] = Variant("s", str(value))
    return out


def _translated(fn: Callable[..., _T]) -> Callable[..., _T]:
    """Turn MynaError into its public D-Bus error and anything else into a generic Internal error."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> _T:
        try:
            return fn(*args, **kwargs)
        except DBusError:
            raise
        except Exception as exc:
            raise _dbus_error(exc, fn.__name__) from None

    return wrapper


def _translated_async(fn: Callable[..., Awaitable[_T]]) -> Callable[..., Awaitable[_T]]:
    """``_translated`` for coroutine methods."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> _T:
        try:
            return await fn(*args, **kwargs)
        except DBusError:
            raise
        except Exception as exc:
            raise _dbus_error(exc, fn.__name__) from None

    return wrapper


def _dbus_error(exc: Exception, method: str) -> DBusError:
    """The D-Bus error a failed method answers: a MynaError's code and message, else a generic Internal."""
    if isinstance(exc, MynaError):
        return DBusError(const.dbus_error_name(exc.public_code), exc.message)
    # The caller may be any peer on the bus: the text and traceback stay in our log.
    _LOGGER.error("D-Bus method %s failed", method, exc_info=exc)
    return DBusError(const.dbus_error_name("Internal"), _INTERNAL_MESSAGE)


def _checked_string(value: str, what: str, limit: int) -> str:
    if not value or len(value) > limit or "\x00" in value:
        raise InvalidOption(f"{what} must be a non-empty string of at most {limit} characters")
    return value


class SpeechInterface(ServiceInterface):
    """``org.myna.Speech1``: parse the call, call the engine, translate the answer."""

    def __init__(self, engine: SpeechEngine) -> None:
        super().__init__(const.INTERFACE)
        self._engine = engine

    def introspect(self) -> intr.Interface:
        """Return the interface description with every argument named."""
        base = super().introspect()

        def named(member: str, args: list[intr.Arg]) -> list[intr.Arg]:
            names = _ARG_NAMES.get(member, ())
            return [intr.Arg(a.signature, a.direction, names[i] if i < len(names) else a.name) for i, a in enumerate(args)]

        methods = []
        for m in base.methods:
            args = named(m.name, [*m.in_args, *m.out_args])
            methods.append(intr.Method(m.name, args[: len(m.in_args)], args[len(m.in_args) :]))
        signals = [intr.Signal(s.name, named(s.name, s.args)) for s in base.signals]
        return intr.Interface(base.name, methods=methods, signals=signals, properties=base.properties)

    @dbus_method(name="Speak")
    @_translated
    def speak(self, text: DBusStr, options: DBusDict) -> DBusUInt64:
        return self._engine.speak(text, options_from_variants(options))

    @dbus_method(name="Stop")
    @_translated
    def stop(self, job_id: DBusUInt64) -> DBusBool:
        return bool(self._engine.stop(job_id))

    @dbus_method(name="StopAll")
    @_translated
    def stop_all(self) -> NoReply:
        self._engine.stop_all()

    @dbus_method(name="ListVoices")
    @_translated
    def list_voices(self) -> VoiceList:
        return [(v.id, v.name, v.language) for v in self._engine.voices()]

    @dbus_method(name="GetStatus")
    @_translated
    def get_status(self) -> DBusDict:
        return status_to_variants(self._engine.status())

    @dbus_method(name="InstallVoice")
    @_translated_async
    async def install_voice(self, path: DBusStr) -> DBusStr:
        path = _checked_string(path, "path", MAX_PATH_CHARS)
        # Reading, verifying and fsyncing a bundle blocks; the loop keeps serving Speak meanwhile.
        return await asyncio.get_running_loop().run_in_executor(None, self._engine.install_voice, path)

    @dbus_method(name="RemoveVoice")
    @_translated_async
    async def remove_voice(self, voice_id: DBusStr) -> NoReply:
        voice_id = _checked_string(voice_id, "voice_id", MAX_VOICE_ID)
        await asyncio.get_running_loop().run_in_executor(None, self._engine.remove_voice, voice_id)

    @dbus_signal(name="JobStarted")
    def job_started(self, job_id: int) -> DBusUInt64:
        return job_id

    @dbus_signal(name="JobFinished")
    def job_finished(self, job_id: int, outcome: str) -> FinishedArgs:
        return job_id, outcome

    @dbus_signal(name="WordBoundary")
    def word_boundary(self, job_id: int, char_offset: int, char_length: int) -> WordArgs:
        return job_id, min(char_offset, _UINT32_MAX), min(char_length, _UINT32_MAX)

    def emit(self, event: JobEvent) -> None:
        """Send the signal that matches an engine event (QUEUED has none: Speak's reply says it)."""
        if event.kind is EventKind.STARTED:
            self.job_started(event.job_id)
        elif event.kind is EventKind.WORD:
            self.word_boundary(event.job_id, event.char_offset, event.char_length)
        elif event.kind is EventKind.FINISHED and event.outcome is not None:
            self.job_finished(event.job_id, event.outcome.value)


class DBusFrontEnd:
    """Export ``org.myna.Speech1`` at ``/org/myna/Speech1`` and forward job events as signals."""

    def __init__(self, engine: SpeechEngine, *, session: bool = False, address: str | None = None) -> None:
        """Serve on the system bus, the session bus (``session``), or the bus at ``address``."""
        self._engine = engine
        self._bus_type = BusType.SESSION if session else BusType.SYSTEM
        self._address = address
        self._interface = SpeechInterface(engine)
        self._bus: MessageBus | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def interface(self) -> SpeechInterface:
        """The exported interface (for introspection snapshots)."""
        return self._interface

    async def start(self) -> None:
        """Connect, export the object, own the bus name; raise DBusUnavailable when that fails."""
        self._loop = asyncio.get_running_loop()
        where = self._address or self._bus_type.name.lower() + " bus"
        try:
            bus = await MessageBus(bus_address=self._address, bus_type=self._bus_type).connect()
        except Exception as exc:
            raise DBusUnavailable(f"cannot connect to the D-Bus {where}: {exc}") from None
        self._bus = bus
        bus.export(const.OBJECT_PATH, self._interface)
        try:
            reply = await bus.request_name(const.BUS_NAME, NameFlag.DO_NOT_QUEUE)
        except DBusError as exc:
            # Typically AccessDenied: the D-Bus policy file is not installed.
            await self._disconnect()
            raise DBusUnavailable(f"cannot own {const.BUS_NAME} on the {where}: {exc.text}") from None
        if reply not in (RequestNameReply.PRIMARY_OWNER, RequestNameReply.ALREADY_OWNER):
            await self._disconnect()
            raise DBusUnavailable(f"{const.BUS_NAME} is already owned on the {where}; is another mynad running?")
        self._unsubscribe = self._engine.subscribe(self._on_engine_event)
        _LOGGER.info("serving %s on the %s", const.BUS_NAME, where)

    async def stop(self) -> None:
        """Stop forwarding events and leave the bus."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self._disconnect()

    async def _disconnect(self) -> None:
        bus, self._bus = self._bus, None
        if bus is None:
            return
        bus.unexport(const.OBJECT_PATH, self._interface)
        bus.disconnect()
        try:
            await bus.wait_for_disconnect()
        except Exception:
            # A connection that ends with an error while we leave is not worth failing shutdown for.
            _LOGGER.debug("D-Bus connection ended with an error", exc_info=True)

    def _on_engine_event(self, event: JobEvent) -> None:
        # Called on the engine's worker thread (or a caller's thread): hop onto our loop.
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._emit, event)
        except RuntimeError:
            # The loop closed between unsubscribe and this event; nobody is listening any more.
            pass

    def _emit(self, event: JobEvent) -> None:
        if self._bus is None:
            return
        try:
            self._interface.emit(event)
        except Exception:
            _LOGGER.exception("could not emit the D-Bus signal for %s", event.kind.value)
