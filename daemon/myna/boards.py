"""Board profiles: read the machine's facts, load the layered YAML profiles, pick the one that fits."""

from __future__ import annotations

import logging
import platform
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Sequence

import yaml

from .api.const import ETC_PROFILE_DIR, VENDOR_PROFILE_DIR
from .datadirs import shipped_dir, shipped_dir_candidates
from .errors import ConfigError

_LOGGER = logging.getLogger(__name__)

TIERS = ("tiny", "small", "base")
"""Voice model tiers, smallest and fastest first."""

SETTING_KEYS = (
    "tier",
    "threads",
    "alsa_device",
    "period_frames",
    "periods",
    "cache_mb",
    "queue_max",
    "max_text_chars",
)
"""Settings every concrete profile must end up with, from its own file or an included one."""

MATCH_KEYS = ("model", "compatible", "cpuinfo", "arch", "min_memory_mb", "max_memory_mb")
"""Keys allowed under ``match:``."""

# Bounds are sanity limits that catch typos (threads: 40, periods: 1), not tuning advice.
_INT_LIMITS: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        "threads": (1, 16),
        # Below 64 frames the worker thread would wake every few milliseconds; above 16384 a
        # single period is most of a second of latency.
        "period_frames": (64, 16384),
        # ALSA needs two periods to double-buffer; more than 32 only adds cancel latency.
        "periods": (2, 32),
        # 0 disables the rendered-audio cache.
        "cache_mb": (0, 4096),
        "queue_max": (1, 1024),
        "max_text_chars": (1, 100_000),
        "priority": (-1000, 1000),
        "min_memory_mb": (0, 1 << 24),
        "max_memory_mb": (0, 1 << 24),
    }
)
_FILE_KEYS = frozenset(("description", "include", "priority", "match", *SETTING_KEYS))
_PROFILE_KEYS = frozenset(("name", "description", "priority", "match", *SETTING_KEYS))
# Profile names become file names and appear in logs, so keep them to a safe alphabet (no paths).
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_ARCH_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "arm64": "aarch64",
        "amd64": "x86_64",
        "x64": "x86_64",
        # A 32-bit kernel on an ARMv8 core reports armv8l; its userland is armv7l (armhf).
        "armv8l": "armv7l",
    }
)
_MB = 1024  # /proc/meminfo counts in kB that are KiB


def normalize_arch(machine: str, pointer_bits: int = 64) -> str:
    """Return the userland architecture that wheels are built for, from ``platform.machine()``.

    A 64-bit kernel under 32-bit Raspberry Pi OS reports ``aarch64`` although every binary,
    Python included, is armv7l; what matters for the runtime is the userland, so a 32-bit
    interpreter on an ``aarch64`` kernel counts as ``armv7l``.
    """
    arch = machine.strip().lower()
    arch = _ARCH_ALIASES.get(arch, arch)
    if arch == "aarch64" and pointer_bits == 32:
        return "armv7l"
    return arch


@dataclass(frozen=True)
class BoardFacts:
    """What was read from the machine; the input of detection."""

    dt_model: str | None = None
    """Device-tree ``model`` without its trailing NUL; None on machines without a device tree."""
    dt_compatible: tuple[str, ...] = ()
    """Device-tree ``compatible`` entries, most specific first."""
    cpuinfo: dict[str, str] = field(default_factory=dict)
    """/proc/cpuinfo fields; for per-CPU fields the first CPU's value (the boot CPU)."""
    arch: str = ""
    """Userland architecture: ``aarch64``, ``armv7l``, ``x86_64``, ..."""
    memory_mb: int | None = None
    """MemTotal in MiB (what the kernel manages, a little under the RAM size); None if unknown."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> BoardFacts:
        """Build from plain values, the inverse of to_dict."""
        memory = raw.get("memory_mb")
        return cls(
            dt_model=raw.get("dt_model"),
            dt_compatible=tuple(raw.get("dt_compatible") or ()),
            cpuinfo={str(k): str(v) for k, v in (raw.get("cpuinfo") or {}).items()},
            arch=str(raw.get("arch") or ""),
            memory_mb=None if memory is None else int(memory),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return plain values."""
        return {
            "dt_model": self.dt_model,
            "dt_compatible": list(self.dt_compatible),
            "cpuinfo": dict(self.cpuinfo),
            "arch": self.arch,
            "memory_mb": self.memory_mb,
        }

    def summary(self) -> str:
        """Return a one-line description for logs and error messages."""
        memory = "unknown" if self.memory_mb is None else f"{self.memory_mb} MB"
        return (
            f"model={self.dt_model!r}, compatible={list(self.dt_compatible)}, "
            f"arch={self.arch!r}, memory={memory}"
        )


@dataclass(frozen=True)
class MatchRules:
    """Detection rules of one profile: every rule that is set must hold; with none set it never matches."""

    model: str | None = None
    """Regular expression searched (``re.search``) in the device-tree model."""
    compatible: tuple[str, ...] = ()
    """Device-tree compatible entries; the machine must list at least one of them."""
    cpuinfo: tuple[tuple[str, str], ...] = ()
    """``(field, regex)`` pairs; each regex is searched in that /proc/cpuinfo field, all must hold."""
    arch: tuple[str, ...] = ()
    """Userland architectures; the machine's must be one of them."""
    min_memory_mb: int | None = None
    """Lowest MemTotal in MiB, inclusive."""
    max_memory_mb: int | None = None
    """Highest MemTotal in MiB, inclusive."""

    @property
    def empty(self) -> bool:
        """True when no rule is set: the profile can only be chosen explicitly."""
        return self == MatchRules()

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None, *, where: str = "match") -> MatchRules:
        """Validate a ``match:`` mapping; raise ConfigError naming the key."""
        values = _check_match(raw or {}, where, partial=False)
        return cls(
            model=values.get("model"),
            compatible=tuple(values.get("compatible", ())),
            cpuinfo=tuple(values.get("cpuinfo", {}).items()),
            arch=tuple(values.get("arch", ())),
            min_memory_mb=values.get("min_memory_mb"),
            max_memory_mb=values.get("max_memory_mb"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the rules that are set, in the YAML shape."""
        out: dict[str, Any] = {}
        if self.model is not None:
            out["model"] = self.model
        if self.compatible:
            out["compatible"] = list(self.compatible)
        if self.cpuinfo:
            out["cpuinfo"] = dict(self.cpuinfo)
        if self.arch:
            out["arch"] = list(self.arch)
        if self.min_memory_mb is not None:
            out["min_memory_mb"] = self.min_memory_mb
        if self.max_memory_mb is not None:
            out["max_memory_mb"] = self.max_memory_mb
        return out

    def explain(self, facts: BoardFacts) -> list[str] | None:
        """Return one phrase per rule when all hold, or None when any fails or none is set."""
        if self.empty:
            return None
        phrases: list[str] = []
        if self.model is not None:
            if facts.dt_model is None or not re.search(self.model, facts.dt_model):
                return None
            phrases.append(f"device-tree model {facts.dt_model!r} matches /{self.model}/")
        if self.compatible:
            hit = next((c for c in self.compatible if c in facts.dt_compatible), None)
            if hit is None:
                return None
            phrases.append(f"device-tree compatible has {hit!r}")
        for name, pattern in self.cpuinfo:
            value = facts.cpuinfo.get(name)
            if value is None or not re.search(pattern, value):
                return None
            phrases.append(f"cpuinfo {name} {value!r} matches /{pattern}/")
        if self.arch:
            if facts.arch not in self.arch:
                return None
            phrases.append(f"arch is {facts.arch!r}")
        if self.min_memory_mb is not None or self.max_memory_mb is not None:
            if facts.memory_mb is None:
                return None
            if self.min_memory_mb is not None:
                if facts.memory_mb < self.min_memory_mb:
                    return None
                phrases.append(f"memory {facts.memory_mb} MB >= {self.min_memory_mb} MB")
            if self.max_memory_mb is not None:
                if facts.memory_mb > self.max_memory_mb:
                    return None
                phrases.append(f"memory {facts.memory_mb} MB <= {self.max_memory_mb} MB")
        return phrases


@dataclass(frozen=True)
class BoardProfile:
    """The resolved settings of one board (includes and override directories applied)."""

    name: str
    """Profile name: the YAML file's name without ``.yaml``."""
    tier: str
    """Voice model tier to load: ``tiny``, ``small`` or ``base``."""
    threads: int
    """Inference threads (1–16); the runtime may use fewer on a machine with fewer cores."""
    alsa_device: str
    """ALSA PCM name, e.g. ``default`` or ``plughw:CARD=wm8960audio,DEV=0``."""
    period_frames: int
    """Frames per ALSA period: how much audio one write hands to the card."""
    periods: int
    """Periods in the ALSA ring; the buffer is period_frames × periods frames."""
    cache_mb: int
    """Size bound of the rendered-audio LRU cache; 0 disables it."""
    queue_max: int
    """Most jobs waiting in the queue before Speak answers Busy."""
    max_text_chars: int
    """Longest text accepted in one request before TextTooLong."""
    description: str = ""
    """One line for humans (``myna board``)."""
    priority: int = 0
    """Detection order: higher is tried first, ties by name; specific boards sit above generic ones."""
    match: MatchRules = field(default_factory=MatchRules)
    """The merged detection rules; empty means the profile is only chosen explicitly."""

    @property
    def buffer_frames(self) -> int:
        """Frames in the whole ALSA ring."""
        return self.period_frames * self.periods

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, where: str | None = None) -> BoardProfile:
        """Validate a resolved profile (``name`` plus every setting); raise ConfigError naming the key.

        ``where`` names the source (the YAML files) in error messages.
        """
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where or 'board profile'}: must be a mapping")
        name = raw.get("name")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise _error(where or "board profile", "name", f"must match {_NAME_RE.pattern}, got {name!r}")
        where = where or f"board profile {name!r}"
        for key in raw:
            if key not in _PROFILE_KEYS:
                raise _error(where, str(key), f"unknown key; known: {', '.join(sorted(_PROFILE_KEYS))}")
        settings: dict[str, Any] = {}
        for key in SETTING_KEYS:
            if raw.get(key) is None:
                raise _error(where, key, "missing (set it in this profile or in one it includes)")
            settings[key] = _check_value(key, raw[key], where)
        description = raw.get("description")
        priority = raw.get("priority")
        match = MatchRules.from_dict(raw.get("match"), where=where)
        if (
            match.min_memory_mb is not None
            and match.max_memory_mb is not None
            and match.min_memory_mb > match.max_memory_mb
        ):
            raise _error(where, "match.min_memory_mb", "is above match.max_memory_mb: nothing can match")
        return cls(
            name=name,
            description="" if description is None else _check_value("description", description, where),
            priority=0 if priority is None else _check_value("priority", priority, where),
            match=match,
            **settings,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return plain values, the inverse of from_dict."""
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "priority": self.priority,
            "match": self.match.to_dict(),
        }
        for key in SETTING_KEYS:
            out[key] = getattr(self, key)
        return out


@dataclass(frozen=True)
class Detection:
    """The chosen profile and why it was chosen."""

    profile: BoardProfile
    """The profile in force."""
    reason: str
    """Human-readable: which rules matched, or that the profile was named explicitly."""
    explicit: bool = False
    """True when the configuration named the board instead of detection picking it."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Detection:
        """Build from plain values, the inverse of to_dict."""
        return cls(
            profile=BoardProfile.from_dict(raw["profile"]),
            reason=str(raw["reason"]),
            explicit=bool(raw.get("explicit", False)),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return plain values."""
        return {"profile": self.profile.to_dict(), "reason": self.reason, "explicit": self.explicit}


# ---------------------------------------------------------------- reading the machine


def read_facts(root: Path = Path("/"), *, arch: str | None = None) -> BoardFacts:
    """Read device tree, /proc/cpuinfo and /proc/meminfo under ``root``; missing files are just unknown.

    ``arch`` replaces ``platform.machine()`` (tests use it to pretend to be another machine).
    """
    root = Path(root)
    dt_bases = (root / "proc" / "device-tree", root / "sys" / "firmware" / "devicetree" / "base")
    model_bytes = _read_first(base / "model" for base in dt_bases)
    compatible_bytes = _read_first(base / "compatible" for base in dt_bases)
    cpuinfo_bytes = _read_first([root / "proc" / "cpuinfo"])
    meminfo_bytes = _read_first([root / "proc" / "meminfo"])

    model = None
    if model_bytes is not None:
        # Device-tree strings end in NUL; some firmware pads with more than one.
        model = model_bytes.split(b"\0", 1)[0].decode("utf-8", "replace").strip() or None
    compatible: tuple[str, ...] = ()
    if compatible_bytes is not None:
        compatible = tuple(
            part.decode("utf-8", "replace") for part in compatible_bytes.split(b"\0") if part
        )
    cpuinfo = parse_cpuinfo(cpuinfo_bytes.decode("utf-8", "replace")) if cpuinfo_bytes else {}
    memory_mb = parse_memtotal_mb(meminfo_bytes.decode("utf-8", "replace")) if meminfo_bytes else None
    if arch is None:
        machine_arch = normalize_arch(platform.machine(), 64 if sys.maxsize > 2**32 else 32)
    else:
        machine_arch = normalize_arch(arch)
    facts = BoardFacts(
        dt_model=model,
        dt_compatible=compatible,
        cpuinfo=cpuinfo,
        arch=machine_arch,
        memory_mb=memory_mb,
    )
    _LOGGER.debug("board facts: %s", facts.summary())
    return facts


def parse_cpuinfo(text: str) -> dict[str, str]:
    """Parse /proc/cpuinfo into ``{field: value}``; a field repeated per CPU keeps its first value."""
    info: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key and key not in info:
            info[key] = value.strip()
    return info


def parse_memtotal_mb(text: str) -> int | None:
    """Return MemTotal from /proc/meminfo in MiB, or None when absent or malformed."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) // _MB
            return None
    return None


def _read_first(paths: Iterable[Path]) -> bytes | None:
    for path in paths:
        try:
            return path.read_bytes()
        except OSError as exc:
            # Normal on x86 (no device tree) and in containers; detection treats it as unknown.
            _LOGGER.debug("cannot read %s: %s", path, exc)
    return None


# ---------------------------------------------------------------- loading profiles


def vendor_profile_dir() -> Path:
    """Return the shipped ``board_profiles/`` directory; raise ConfigError if it cannot be found.

    In a source checkout or an editable install this module is ``<repo>/daemon/myna/boards.py``
    and the profiles sit at ``<repo>/board_profiles``; an installed package finds them as data
    inside the package, under ``<prefix>/share/myna`` or under ``/usr/share/myna``.
    """
    found = shipped_dir(VENDOR_PROFILE_DIR)
    if found is None:
        looked = ", ".join(map(str, shipped_dir_candidates(VENDOR_PROFILE_DIR)))
        raise ConfigError("no board_profiles directory found; looked in " + looked)
    return found


def default_profile_dirs(extra: Sequence[Path] = ()) -> tuple[Path, ...]:
    """Return the vendor directory, then /etc/myna/board_profiles, then ``extra``, in override order."""
    return (vendor_profile_dir(), Path(ETC_PROFILE_DIR), *(Path(p) for p in extra))


def load_profiles(dirs: Sequence[Path]) -> dict[str, BoardProfile]:
    """Load ``*.yaml`` from each directory in order and return the concrete profiles by name.

    A file whose name was already seen in an earlier directory is deep-merged over it (mappings
    merge, other values replace, ``null`` unsets); a new name adds a profile.  ``include:`` is
    resolved after that layering, so an override of a base profile reaches every profile that
    includes it.  Names starting with ``_`` are abstract: they can be included but are not returned.
    Missing directories are skipped (the /etc one usually does not exist).
    """
    layered: dict[str, dict[str, Any]] = {}
    sources: dict[str, list[Path]] = {}
    for directory in dirs:
        directory = Path(directory)
        if not directory.is_dir():
            _LOGGER.debug("no board profile directory %s", directory)
            continue
        for path in sorted(directory.glob("*.yaml")):
            if path.name.startswith("."):
                continue  # editor lock files and the like
            name = path.stem
            if not _NAME_RE.match(name):
                raise ConfigError(f"{path}: the file name must be a profile name matching {_NAME_RE.pattern}")
            fragment = _read_profile_file(path)
            if name in layered:
                _LOGGER.info("board profile %s: %s overrides %s", name, path, sources[name][-1])
                layered[name] = _merge(layered[name], fragment, keep_none=True)
            else:
                layered[name] = fragment
            sources.setdefault(name, []).append(path)

    resolved: dict[str, dict[str, Any]] = {}
    for name in sorted(layered):
        _resolve(name, layered, sources, resolved, ())
    profiles: dict[str, BoardProfile] = {}
    for name in sorted(resolved):
        if name.startswith("_"):
            continue
        where = _where(sources, name)
        profiles[name] = BoardProfile.from_dict({"name": name, **resolved[name]}, where=where)
    _LOGGER.debug("loaded board profiles: %s", ", ".join(profiles))
    return profiles


def _read_profile_file(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if raw is None:
        return {}  # an empty override file changes nothing
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: a board profile must be a mapping of keys to values")
    where = str(path)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _FILE_KEYS:
            raise _error(where, str(key), f"unknown key; known: {', '.join(sorted(_FILE_KEYS))}")
        if value is None:
            out[key] = None  # unsets what an earlier directory or an included profile set
        elif key == "include":
            out[key] = _check_include(value, where)
        elif key == "match":
            out[key] = _check_match(value, where, partial=True)
        else:
            out[key] = _check_value(key, value, where)
    return out


def _resolve(
    name: str,
    layered: Mapping[str, Mapping[str, Any]],
    sources: Mapping[str, Sequence[Path]],
    resolved: dict[str, dict[str, Any]],
    stack: tuple[str, ...],
) -> dict[str, Any]:
    if name in resolved:
        return resolved[name]
    own = layered[name]
    chain = (*stack, name)
    base: dict[str, Any] = {}
    # Later includes win over earlier ones, and the profile's own keys win over all of them.
    for parent in own.get("include") or ():
        if parent in chain:
            cycle = " -> ".join((*chain[chain.index(parent) :], parent))
            raise _error(_where(sources, name), "include", f"cycle {cycle}")
        if parent not in layered:
            raise _error(
                _where(sources, name),
                "include",
                f"unknown profile {parent!r}; known: {', '.join(sorted(layered))}",
            )
        base = _merge(base, _resolve(parent, layered, sources, resolved, chain), keep_none=False)
    result = _merge(base, {k: v for k, v in own.items() if k != "include"}, keep_none=False)
    resolved[name] = result
    return result


def _merge(base: Mapping[str, Any], over: Mapping[str, Any], *, keep_none: bool) -> dict[str, Any]:
    """Deep-merge ``over`` onto ``base``: mappings merge, other values replace, None unsets.

    Between directories ``keep_none`` keeps the None so that it can still unset a key that an
    included profile provides; when includes are resolved the None finally removes the key.
    """
    out = dict(base)
    for key, value in over.items():
        if value is None and not keep_none:
            out.pop(key, None)
        elif isinstance(value, Mapping):
            previous = out.get(key)
            out[key] = _merge(previous if isinstance(previous, Mapping) else {}, value, keep_none=keep_none)
        else:
            out[key] = value
    return out


def _where(sources: Mapping[str, Sequence[Path]], name: str) -> str:
    return ", ".join(str(p) for p in sources.get(name, ())) or f"board profile {name!r}"


# ---------------------------------------------------------------- validation


def _error(where: str, key: str, problem: str) -> ConfigError:
    return ConfigError(f"{where}: {key}: {problem}")


def _check_value(key: str, value: Any, where: str) -> Any:
    if key in _INT_LIMITS:
        low, high = _INT_LIMITS[key]
        # bool is an int subclass; ``threads: yes`` is a typo, not 1.
        if isinstance(value, bool) or not isinstance(value, int):
            raise _error(where, key, f"must be an integer, got {value!r}")
        if not low <= value <= high:
            raise _error(where, key, f"must be from {low} to {high}, got {value}")
        return value
    if key == "tier":
        if value not in TIERS:
            raise _error(where, key, f"must be one of {', '.join(TIERS)}, got {value!r}")
        return value
    if key == "alsa_device":
        if not isinstance(value, str) or not value.strip() or not value.isprintable():
            raise _error(where, key, f"must be a non-empty ALSA PCM name, got {value!r}")
        return value
    if key == "description":
        if not isinstance(value, str):
            raise _error(where, key, f"must be a string, got {value!r}")
        return value
    raise _error(where, key, "unknown key")


def _check_include(value: Any, where: str) -> list[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        raise _error(where, "include", f"must be a profile name or a list of them, got {value!r}")
    for name in names:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise _error(where, "include", f"not a profile name: {name!r}")
    return list(names)


def _check_match(raw: Any, where: str, *, partial: bool) -> dict[str, Any]:
    """Check a ``match:`` mapping; ``partial`` (a file) allows None values that unset a rule."""
    if not isinstance(raw, Mapping):
        raise _error(where, "match", f"must be a mapping of rules, got {raw!r}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        path = f"match.{key}"
        if key not in MATCH_KEYS:
            raise _error(where, path, f"unknown rule; known: {', '.join(MATCH_KEYS)}")
        if value is None:
            if partial:
                out[key] = None
            continue
        if key == "model":
            out[key] = _check_regex(value, where, path)
        elif key in ("compatible", "arch"):
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
                raise _error(where, path, f"must be a string or a non-empty list of strings, got {value!r}")
            out[key] = [normalize_arch(i) for i in items] if key == "arch" else list(items)
        elif key == "cpuinfo":
            if not isinstance(value, Mapping) or not value:
                raise _error(where, path, f"must be a mapping of cpuinfo field to regex, got {value!r}")
            fields_: dict[str, str | None] = {}
            for name, pattern in value.items():
                if not isinstance(name, str) or not name:
                    raise _error(where, path, f"field names must be strings, got {name!r}")
                if pattern is None and partial:
                    fields_[name] = None
                else:
                    fields_[name] = _check_regex(pattern, where, f"{path}.{name}")
            out[key] = fields_
        else:
            out[key] = _check_value(key, value, where)
    return out


def _check_regex(value: Any, where: str, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise _error(where, path, f"must be a non-empty regular expression, got {value!r}")
    try:
        re.compile(value)
    except re.error as exc:
        raise _error(where, path, f"bad regular expression: {exc}") from None
    return value


# ---------------------------------------------------------------- choosing


def detect(profiles: Mapping[str, BoardProfile], facts: BoardFacts) -> Detection | None:
    """Return the first profile, by descending priority then name, whose rules all hold; else None."""
    for profile in sorted(profiles.values(), key=lambda p: (-p.priority, p.name)):
        if profile.name.startswith("_"):
            continue  # abstract profiles only exist to be included
        phrases = profile.match.explain(facts)
        if phrases is None:
            continue
        reason = f"detected {profile.name}: {'; '.join(phrases)} (priority {profile.priority})"
        return Detection(profile=profile, reason=reason, explicit=False)
    return None


def select(
    profiles: Mapping[str, BoardProfile],
    facts: BoardFacts,
    explicit: str | None = None,
) -> Detection:
    """Return the explicitly named profile if given (it beats detection), else the detected one.

    Raise ConfigError for an unknown explicit name or when no profile matches the machine.
    """
    detected = detect(profiles, facts)
    known = ", ".join(sorted(profiles)) or "(none)"
    if explicit is not None:
        profile = profiles.get(explicit)
        if profile is None or explicit.startswith("_"):
            raise ConfigError(f"board: unknown board profile {explicit!r}; known: {known}")
        if detected is None:
            other = "detection matches no profile"
        elif detected.profile.name == explicit:
            other = "detection agrees"
        else:
            other = f"detection would pick {detected.profile.name}"
        reason = f"{explicit} chosen explicitly (board: {explicit}); {other}"
        choice = Detection(profile=profile, reason=reason, explicit=True)
    elif detected is None:
        raise ConfigError(
            f"no board profile matches this machine ({facts.summary()}); set board: in the daemon "
            f"config or add a profile to {ETC_PROFILE_DIR}; known: {known}"
        )
    else:
        choice = detected
    _LOGGER.info("board profile: %s", choice.reason)
    return choice
