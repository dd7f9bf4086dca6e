"""Voice packs: the typed manifest, validation before use, adapter files, tier choice and the registry."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from . import errors
from .boards import TIERS
from .text import phonemes

_LOGGER = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
# Smallest to largest; a board profile names one of these and gets it or the next smaller one.
TIER_ORDER = TIERS  # one list of tier names, owned by the board matrix
GRAPH_ROLES = ("encoder", "decoder", "vocoder")
# Graph inputs the pipeline fills per chunk; every other input comes from the voice's adapter file.
PIPELINE_INPUTS = frozenset({"phoneme_ids", "frames", "frame_pitch", "mel"})
# The vocoder's outputs follow one of two conventions (frames × n_fft // 2 + 1 bins each): the STFT's real
# and imaginary parts (the placeholder), or its natural-log magnitude and an unnormalised phase vector
# (trained voices: INT8 noise on a log magnitude is a relative error on every bin).
VOCODER_OUTPUTS = (("stft_real", "stft_imag"), ("log_magnitude", "phase_x", "phase_y"))
DTYPES = ("float32", "int32", "int8", "int16")
_MAX_MANIFEST_BYTES = 1 << 20
MAX_ADAPTER_BYTES = 16 << 20
# Tensors an adapter may hold besides graph inputs: voice settings the pipeline applies itself.
# ``pitch_scale`` float32 [1] multiplies the encoder's predicted F0 on every request, before the request's
# own pitch factor: a clone keeps its base voice's rhythm (encoder vector) yet speaks at the pitch level of
# its recordings, which its timbre vector was fitted on.
VOICE_TENSORS: Mapping[str, tuple[int, ...]] = {"pitch_scale": (1,)}
PITCH_SCALE_RANGE = (0.5, 2.0)


def _field(raw: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(raw, Mapping):
        raise errors.VoicePackError(f"{where}: expected an object")
    if key not in raw:
        raise errors.VoicePackError(f"{where}: missing field {key!r}")
    value = raw[key]
    # bool is an int in Python; a manifest saying "bucket": true is still wrong.
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise errors.VoicePackError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value


def _positive(raw: Mapping[str, Any], key: str, where: str) -> int:
    value = _field(raw, key, int, where)
    if value <= 0:
        raise errors.VoicePackError(f"{where}.{key}: must be positive, got {value}")
    return int(value)


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output as the manifest promises it."""

    name: str
    """Tensor name in the graph (the contract's names: ``phoneme_ids``, ``speaker``, ``mel`` ...)."""
    dtype: str
    """Element type inside the graph: float32, int32, int8 or int16."""
    shape: tuple[int, ...]
    """Fixed shape, batch first; no dynamic dimensions."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str) -> "TensorSpec":
        """Parse and check one tensor entry."""
        name = _field(raw, "name", str, where)
        dtype = _field(raw, "dtype", str, where)
        if dtype not in DTYPES:
            raise errors.VoicePackError(f"{where}.dtype: {dtype!r} is not one of {', '.join(DTYPES)}")
        shape = _field(raw, "shape", list, where)
        if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
            raise errors.VoicePackError(f"{where}.shape: must be a list of positive ints, got {shape!r}")
        return cls(name, dtype, tuple(shape))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True)
class GraphSpec:
    """One TFLite graph file of a tier."""

    file: str
    """File name inside the pack directory (no directories)."""
    sha256: str
    """Hex SHA-256 of the file; checked before the file is used."""
    quantization: str
    """How the graph is quantized: ``int8`` (full INT8 inside, float I/O) or ``float32`` (not quantized)."""
    inputs: tuple[TensorSpec, ...]
    """Inputs in graph order."""
    outputs: tuple[TensorSpec, ...]
    """Outputs in graph order."""

    def input(self, name: str) -> TensorSpec | None:
        """The input called ``name``, or None."""
        return next((t for t in self.inputs if t.name == name), None)

    def output(self, name: str) -> TensorSpec | None:
        """The output called ``name``, or None."""
        return next((t for t in self.outputs if t.name == name), None)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str) -> "GraphSpec":
        """Parse and check one graph entry."""
        sha = _field(raw, "sha256", str, where)
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise errors.VoicePackError(f"{where}.sha256: not a lowercase hex SHA-256")
        ios = []
        for kind in ("inputs", "outputs"):
            entries = _field(raw, kind, list, where)
            specs = tuple(TensorSpec.from_dict(e, f"{where}.{kind}[{i}]") for i, e in enumerate(entries))
            if len({t.name for t in specs}) != len(specs):
                raise errors.VoicePackError(f"{where}.{kind}: duplicate tensor names")
            ios.append(specs)
        return cls(_field(raw, "file", str, where), sha, _field(raw, "quantization", str, where), ios[0], ios[1])

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "file": self.file,
            "sha256": self.sha256,
            "quantization": self.quantization,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
        }


@dataclass(frozen=True)
class TierSpec:
    """One size of the model: its graphs and streaming geometry."""

    phoneme_bucket: int
    """Ids per encoder run (P); chunks are padded to it with id 0 and may not exceed it."""
    frame_chunk: int
    """Frames per decoder/vocoder run (F), context included."""
    overlap: int
    """Context frames on each side of a chunk; each run yields ``frame_chunk - 2*overlap`` frames."""
    graphs: Mapping[str, GraphSpec]
    """Role (encoder, decoder, vocoder) → graph."""

    @property
    def hop_frames(self) -> int:
        """Frames each decoder/vocoder run finishes."""
        return self.frame_chunk - 2 * self.overlap

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str) -> "TierSpec":
        """Parse and check one tier entry."""
        graphs_raw = _field(raw, "graphs", dict, where)
        if set(graphs_raw) != set(GRAPH_ROLES):
            raise errors.VoicePackError(f"{where}.graphs: need exactly {', '.join(GRAPH_ROLES)}, got {sorted(graphs_raw)}")
        graphs = {role: GraphSpec.from_dict(graphs_raw[role], f"{where}.graphs.{role}") for role in GRAPH_ROLES}
        overlap = _field(raw, "overlap", int, where)
        tier = cls(_positive(raw, "phoneme_bucket", where), _positive(raw, "frame_chunk", where), overlap, graphs)
        # The vocoder looks one decoder run ahead for its right context, so context must fit in one hop.
        if overlap < 0 or tier.hop_frames <= 0 or overlap > tier.hop_frames:
            raise errors.VoicePackError(
                f"{where}: overlap {overlap} does not fit frame_chunk {tier.frame_chunk} (need 0 <= overlap <= chunk - 2*overlap)"
            )
        return tier

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "phoneme_bucket": self.phoneme_bucket,
            "frame_chunk": self.frame_chunk,
            "overlap": self.overlap,
            "graphs": {role: self.graphs[role].to_dict() for role in GRAPH_ROLES},
        }


@dataclass(frozen=True)
class VoiceSpec:
    """One voice of a pack: a name and an adapter file of speaker tensors."""

    name: str
    """Human-readable name."""
    language: str
    """BCP-47 language tag, e.g. ``en-US``."""
    adapter: str
    """``.npz`` file in the pack directory: float32 arrays keyed by graph input name (e.g. ``speaker``)."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str) -> "VoiceSpec":
        """Parse one voice entry."""
        return cls(_field(raw, "name", str, where), _field(raw, "language", str, where), _field(raw, "adapter", str, where))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {"name": self.name, "language": self.language, "adapter": self.adapter}


@dataclass(frozen=True)
class AudioSpec:
    """Output audio and STFT geometry shared by every tier."""

    sample_rate: int
    """Samples per second of the vocoder's output."""
    hop_length: int
    """Samples per frame."""
    n_fft: int
    """FFT size of the vocoder's STFT outputs (bins = n_fft // 2 + 1)."""
    win_length: int
    """Hann window length, centred in n_fft."""
    mel_floor: float = 0.0
    """The decoder's mel value for silence; the vocoder's context before and after an utterance is filled
    with it (a trained voice's natural-log mel floor is ln 1e-5; 0 in a log mel would be a loud frame)."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str) -> "AudioSpec":
        """Parse and check the audio entry."""
        spec = cls(*(_positive(raw, k, where) for k in ("sample_rate", "hop_length", "n_fft", "win_length")))
        if spec.win_length > spec.n_fft or spec.hop_length > spec.win_length:
            raise errors.VoicePackError(f"{where}: need hop_length <= win_length <= n_fft")
        floor = raw.get("mel_floor", 0.0)
        if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not math.isfinite(floor):
            raise errors.VoicePackError(f"{where}.mel_floor: must be a finite number")
        return dataclasses.replace(spec, mel_floor=float(floor))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (``mel_floor`` only when set, so older manifests round-trip unchanged)."""
        out: dict[str, Any] = {"sample_rate": self.sample_rate, "hop_length": self.hop_length, "n_fft": self.n_fft,
                               "win_length": self.win_length}
        if self.mel_floor:
            out["mel_floor"] = self.mel_floor
        return out


@dataclass(frozen=True)
class InventorySpec:
    """Which phoneme inventory the graphs were trained on."""

    name: str
    """Inventory name, e.g. ``myna-graphemes``."""
    version: int
    """Inventory version; ids of another version mean other sounds."""
    size: int
    """Number of ids, padding included."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str) -> "InventorySpec":
        """Parse the inventory entry."""
        return cls(_field(raw, "name", str, where), _field(raw, "version", int, where), _positive(raw, "size", where))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {"name": self.name, "version": self.version, "size": self.size}


@dataclass(frozen=True)
class Manifest:
    """``manifest.json`` of a voice pack."""

    format_version: int
    """Manifest format; this runtime reads version 1."""
    pack_id: str
    """Unique id of the pack."""
    default_voice: str
    """Voice id used when a request names none (must be in ``voices``)."""
    voices: Mapping[str, VoiceSpec]
    """Voice id → voice."""
    audio: AudioSpec
    """Sample rate and STFT geometry."""
    phoneme_inventory: InventorySpec
    """The inventory the graphs expect; must be one of the runtime's ``phonemes.INVENTORIES``."""
    tiers: Mapping[str, TierSpec]
    """Tier name (from TIER_ORDER) → graphs; at least one."""
    licence: str
    """SPDX licence of the weights."""
    provenance: str
    """Where the weights came from (data sets, teacher models, training run)."""
    placeholder: bool = False
    """True for a pack that does not speak (the generated test and bench pack): its default voice is
    the registry's default only when no other pack is installed.  Written only when true."""

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "Manifest":
        """Parse and check a manifest mapping; raise VoicePackError naming the bad field."""
        where = "manifest"
        version = _field(raw, "format_version", int, where)
        if version != FORMAT_VERSION:
            raise errors.VoicePackError(f"manifest.format_version: {version} is not supported (expected {FORMAT_VERSION})")
        voices_raw = _field(raw, "voices", dict, where)
        if not voices_raw:
            raise errors.VoicePackError("manifest.voices: a pack needs at least one voice")
        voices = {str(k): VoiceSpec.from_dict(v, f"manifest.voices.{k}") for k, v in voices_raw.items()}
        tiers_raw = _field(raw, "tiers", dict, where)
        if not tiers_raw:
            raise errors.VoicePackError("manifest.tiers: a pack needs at least one tier")
        for name in tiers_raw:
            if name not in TIER_ORDER:
                raise errors.VoicePackError(f"manifest.tiers: unknown tier {name!r} (known: {', '.join(TIER_ORDER)})")
        tiers = {k: TierSpec.from_dict(tiers_raw[k], f"manifest.tiers.{k}") for k in TIER_ORDER if k in tiers_raw}
        default = _field(raw, "default_voice", str, where)
        if default not in voices:
            raise errors.VoicePackError(f"manifest.default_voice: {default!r} is not one of the pack's voices")
        placeholder = raw.get("placeholder", False)
        if not isinstance(placeholder, bool):
            raise errors.VoicePackError(f"manifest.placeholder: expected bool, got {type(placeholder).__name__}")
        return cls(
            version,
            _field(raw, "pack_id", str, where),
            default,
            voices,
            AudioSpec.from_dict(_field(raw, "audio", dict, where), "manifest.audio"),
            InventorySpec.from_dict(_field(raw, "phoneme_inventory", dict, where), "manifest.phoneme_inventory"),
            tiers,
            _field(raw, "licence", str, where),
            _field(raw, "provenance", str, where),
            placeholder,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values, the inverse of from_dict."""
        return {
            "format_version": self.format_version,
            "pack_id": self.pack_id,
            "default_voice": self.default_voice,
            "voices": {k: v.to_dict() for k, v in self.voices.items()},
            "audio": self.audio.to_dict(),
            "phoneme_inventory": self.phoneme_inventory.to_dict(),
            "tiers": {k: v.to_dict() for k, v in self.tiers.items()},
            "licence": self.licence,
            "provenance": self.provenance,
            **({"placeholder": True} if self.placeholder else {}),
        }

    def compatibility_hash(self) -> str:
        """Hex SHA-256 naming the base model an adapter is made for: pack id, inventory, audio, every graph.

        A voice bundle carries it; a bundle for another pack, another inventory or retrained graphs
        (any graph's sha256 differs) does not fit, even where the tensor shapes happen to agree.
        """
        identity = {
            "scheme": "myna-base-compatibility-v1",
            "pack_id": self.pack_id,
            "phoneme_inventory": self.phoneme_inventory.to_dict(),
            "audio": self.audio.to_dict(),
            "graphs": {tier: {role: g.sha256 for role, g in spec.graphs.items()} for tier, spec in self.tiers.items()},
        }
        canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def pack_file(root: Path, name: str, where: str) -> Path:
    """Resolve ``name`` strictly inside ``root``; raise VoicePackError on any path trickery or absence."""
    if not name or name != os.path.basename(name) or name in (".", "..") or "\\" in name or "\x00" in name:
        raise errors.VoicePackError(f"{where}: {name!r} must be a plain file name inside the pack")
    base = root.resolve()
    path = (base / name).resolve()
    # resolve() follows symlinks: a link pointing out of the pack is refused too.
    if path.parent != base:
        raise errors.VoicePackError(f"{where}: {name!r} points outside the pack directory")
    if not path.is_file():
        raise errors.VoicePackError(f"{where}: file {name!r} not found in {base}")
    return path


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class VoiceInfo:
    """What a client sees of an installed voice."""

    id: str
    """Voice id used in requests."""
    name: str
    """Human-readable name."""
    language: str
    """BCP-47 language tag."""
    pack_id: str
    """The pack the voice comes from."""
    tiers: tuple[str, ...]
    """Tiers the pack offers, smallest first."""
    from_bundle: bool = False
    """Installed from a signed voice bundle (InstallVoice) rather than shipped inside the pack."""


@dataclass(frozen=True)
class Voice:
    """A validated voice: its pack and its adapter tensors, ready for a Synthesizer."""

    info: VoiceInfo
    """Public description."""
    pack: "VoicePack"
    """The pack holding the graphs."""
    adapter: Mapping[str, np.ndarray]
    """Graph input name → float32 array (read-only), e.g. ``speaker``."""


@dataclass(frozen=True)
class VoicePack:
    """A validated pack directory."""

    root: Path
    """Resolved pack directory."""
    manifest: Manifest
    """The parsed manifest."""
    adapters: Mapping[str, Mapping[str, np.ndarray]] = field(default_factory=dict)
    """Voice id → adapter arrays, loaded and checked at load time."""

    def graph_path(self, tier: str, role: str) -> Path:
        """Path of a tier's graph file (already checked by ``load``)."""
        return self.root / self.manifest.tiers[tier].graphs[role].file

    @classmethod
    def load(cls, root: Path, verify_graphs: bool = True) -> "VoicePack":
        """Read and validate a pack: manifest, inventory, files, checksums, graph I/O, adapters."""
        root = Path(root).resolve()
        manifest_path = pack_file(root, MANIFEST_NAME, str(root))
        if manifest_path.stat().st_size > _MAX_MANIFEST_BYTES:
            raise errors.VoicePackError(f"{manifest_path}: manifest larger than {_MAX_MANIFEST_BYTES} bytes")
        try:
            raw = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise errors.VoicePackError(f"{manifest_path}: not valid JSON: {exc}") from None
        manifest = Manifest.from_dict(raw)
        _check_inventory(manifest.phoneme_inventory)
        for tier_name, tier in manifest.tiers.items():
            for role, graph in tier.graphs.items():
                where = f"manifest.tiers.{tier_name}.graphs.{role}"
                path = pack_file(root, graph.file, f"{where}.file")
                actual = sha256_of(path)
                if actual != graph.sha256:
                    raise errors.VoicePackError(f"{where}: sha256 of {graph.file} is {actual}, manifest says {graph.sha256}")
                if verify_graphs:
                    _check_graph_io(path, graph, where)
            _check_contract(manifest, tier_name, tier)
        adapters = {
            voice_id: _load_adapter(root, manifest, voice_id, voice) for voice_id, voice in manifest.voices.items()
        }
        return cls(root, manifest, adapters)


def _check_inventory(spec: InventorySpec) -> None:
    known = phonemes.INVENTORIES.get((spec.name, spec.version))
    if known is None or known.size != spec.size:
        have = ", ".join(f"{inv.name} v{inv.version} ({inv.size} ids)" for inv in phonemes.INVENTORIES.values())
        raise errors.VoicePackError(
            f"manifest.phoneme_inventory: pack wants {spec.name} v{spec.version} ({spec.size} ids); runtime has {have}"
        )


def _check_graph_io(path: Path, graph: GraphSpec, where: str) -> None:
    from .inference import runtime  # lazy: reading a manifest must not need a TFLite runtime

    actual_in, actual_out = runtime.read_io(path)
    for kind, declared, actual in (("inputs", graph.inputs, actual_in), ("outputs", graph.outputs, actual_out)):
        if tuple(declared) != tuple(actual):
            raise errors.VoicePackError(
                f"{where}.{kind}: manifest declares {[t.to_dict() for t in declared]}, "
                f"graph {path.name} has {[t.to_dict() for t in actual]}"
            )


def _expect(graph: GraphSpec, kind: str, name: str, shape: tuple[int, ...], where: str) -> None:
    spec = graph.input(name) if kind == "inputs" else graph.output(name)
    if spec is None:
        raise errors.VoicePackError(f"{where}.{kind}: missing tensor {name!r}")
    if spec.shape != shape:
        raise errors.VoicePackError(f"{where}.{kind}.{name}: shape {list(spec.shape)} breaks the contract, expected {list(shape)}")


def _check_contract(manifest: Manifest, tier_name: str, tier: TierSpec) -> None:
    """Check the shapes the pipeline relies on (see myna.inference.pipeline)."""
    where = f"manifest.tiers.{tier_name}.graphs"
    enc, dec, voc = (tier.graphs[r] for r in GRAPH_ROLES)
    p, f = tier.phoneme_bucket, tier.frame_chunk
    hidden = enc.output("hidden")
    if hidden is None or len(hidden.shape) != 3:
        raise errors.VoicePackError(f"{where}.encoder.outputs: missing 3-D tensor 'hidden'")
    h = hidden.shape[2]
    _expect(enc, "inputs", "phoneme_ids", (1, p), f"{where}.encoder")
    _expect(enc, "outputs", "hidden", (1, p, h), f"{where}.encoder")
    _expect(enc, "outputs", "log_duration", (1, p), f"{where}.encoder")
    _expect(enc, "outputs", "pitch", (1, p), f"{where}.encoder")
    mel = dec.output("mel")
    if mel is None or len(mel.shape) != 3:
        raise errors.VoicePackError(f"{where}.decoder.outputs: missing 3-D tensor 'mel'")
    m = mel.shape[2]
    _expect(dec, "inputs", "frames", (1, f, h), f"{where}.decoder")
    _expect(dec, "inputs", "frame_pitch", (1, f, 1), f"{where}.decoder")
    _expect(dec, "outputs", "mel", (1, f, m), f"{where}.decoder")
    bins = manifest.audio.n_fft // 2 + 1
    _expect(voc, "inputs", "mel", (1, f, m), f"{where}.vocoder")
    names = {t.name for t in voc.outputs}
    convention = next((c for c in VOCODER_OUTPUTS if set(c) <= names), None)
    if convention is None:
        raise errors.VoicePackError(
            f"{where}.vocoder.outputs: expected {' or '.join(repr(list(c)) for c in VOCODER_OUTPUTS)}, got {sorted(names)}"
        )
    for name in convention:
        _expect(voc, "outputs", name, (1, f, bins), f"{where}.vocoder")


def adapter_inputs(manifest: Manifest) -> dict[str, tuple[int, ...]]:
    """Every graph input the adapter must supply, with the one shape all graphs agree on."""
    wanted: dict[str, tuple[int, ...]] = {}
    for tier_name, tier in manifest.tiers.items():
        for role, graph in tier.graphs.items():
            for spec in graph.inputs:
                if spec.name in PIPELINE_INPUTS:
                    continue
                if spec.dtype != "float32" and spec.dtype not in ("int8", "int16"):
                    raise errors.VoicePackError(f"manifest.tiers.{tier_name}.graphs.{role}: adapter input {spec.name!r} must be float")
                if wanted.setdefault(spec.name, spec.shape) != spec.shape:
                    raise errors.VoicePackError(
                        f"manifest.tiers.{tier_name}.graphs.{role}: input {spec.name!r} has shape {list(spec.shape)}, "
                        f"other graphs use {list(wanted[spec.name])}"
                    )
    return wanted


def adapter_overrides(manifest: Manifest) -> dict[str, tuple[int, ...]]:
    """Optional adapter tensors ``<role>.<input>`` (e.g. ``decoder.speaker``): that graph's value instead of the shared one.

    A cloned voice keeps a base voice's vector in the encoder (rhythm and pronunciation: the clone stays
    intelligible) and its own vector in the decoder (timbre); the graphs already take the input per graph."""
    shared = adapter_inputs(manifest)
    out: dict[str, tuple[int, ...]] = {}
    for tier in manifest.tiers.values():
        for role, graph in tier.graphs.items():
            for spec in graph.inputs:
                if spec.name in shared:
                    out[f"{role}.{spec.name}"] = shared[spec.name]
    return out


def adapter_value(adapter: Mapping[str, np.ndarray], role: str, name: str) -> np.ndarray | None:
    """The array a ``role`` graph's input ``name`` gets: the role's own override, else the shared tensor."""
    value = adapter.get(f"{role}.{name}")
    return adapter.get(name) if value is None else value


def _load_adapter(root: Path, manifest: Manifest, voice_id: str, voice: VoiceSpec) -> Mapping[str, np.ndarray]:
    where = f"manifest.voices.{voice_id}.adapter"
    path = pack_file(root, voice.adapter, where)
    if path.stat().st_size > MAX_ADAPTER_BYTES:
        raise errors.VoicePackError(f"{where}: {voice.adapter} is larger than {MAX_ADAPTER_BYTES} bytes")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: np.array(archive[key]) for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise errors.VoicePackError(f"{where}: {voice.adapter} is not a readable .npz without pickles: {exc}") from None
    return check_adapter(arrays, adapter_inputs(manifest), f"{where}: {voice.adapter}", optional=adapter_overrides(manifest))


def check_adapter(
    arrays: Mapping[str, np.ndarray],
    wanted: Mapping[str, tuple[int, ...]],
    where: str,
    error: type[errors.MynaError] = errors.VoicePackError,
    optional: Mapping[str, tuple[int, ...]] | None = None,
) -> Mapping[str, np.ndarray]:
    """Check adapter arrays against the graphs' inputs (names, float32, shapes, finite); freeze and return them.

    ``wanted`` must all be present; ``optional`` (per-graph overrides, ``adapter_overrides``) and
    ``VOICE_TENSORS`` may be."""
    optional = {**VOICE_TENSORS, **(optional or {})}
    missing, unknown = set(wanted) - set(arrays), set(arrays) - set(wanted) - set(optional)
    if missing or unknown:
        raise error(f"{where} holds {sorted(arrays)}, graphs need {sorted(wanted)}; may also hold {sorted(optional)}")
    for key, array in arrays.items():
        shape = wanted.get(key, optional.get(key))
        if array.dtype != np.float32 or array.shape != shape:
            raise error(f"{where}[{key!r}] is {array.dtype}{list(array.shape)}, expected float32{list(shape or ())}")
        if not np.all(np.isfinite(array)):
            raise error(f"{where}[{key!r}] has non-finite values")
        array.setflags(write=False)
    scale = arrays.get("pitch_scale")
    low, high = PITCH_SCALE_RANGE
    if scale is not None and not low <= float(scale[0]) <= high:
        raise error(f"{where}['pitch_scale'] is {float(scale[0]):g}, outside {low:g}–{high:g}")
    return arrays


def pitch_scale(adapter: Mapping[str, np.ndarray]) -> float:
    """The voice's own F0 multiplier (``VOICE_TENSORS``); 1 when the adapter has none."""
    value = adapter.get("pitch_scale")
    return 1.0 if value is None else float(value[0])


def choose_tier(pack: VoicePack, wanted: str) -> str:
    """Return ``wanted`` if the pack has it, else the largest smaller tier, else the smallest tier."""
    available = [t for t in TIER_ORDER if t in pack.manifest.tiers]
    if not available:
        raise errors.VoicePackError(f"pack {pack.manifest.pack_id!r} has no tiers")
    if wanted in available:
        return wanted
    if wanted not in TIER_ORDER:
        raise errors.ConfigError(f"unknown tier {wanted!r} (known: {', '.join(TIER_ORDER)})")
    rank = TIER_ORDER.index(wanted)
    smaller = [t for t in available if TIER_ORDER.index(t) < rank]
    chosen = smaller[-1] if smaller else available[0]
    _LOGGER.info(
        "pack %s has no %s tier; using %s (%s)",
        pack.manifest.pack_id, wanted, chosen,
        "largest smaller tier" if smaller else "no smaller tier, smallest available",
    )
    return chosen


class VoiceRegistry:
    """All voices of one or more pack directories, validated at construction.

    The default voice is ``default`` when given, else the ``default_voice`` of the first pack (in
    ``pack_dirs`` order) whose manifest is not marked ``placeholder``, else that of the first placeholder pack.
    """

    def __init__(self, pack_dirs: Iterable[Path], default: str | None = None, strict: bool = True) -> None:
        """Load every pack; with ``strict`` False a broken pack is logged and skipped instead of raising."""
        self._voices: dict[str, Voice] = {}
        self._packs: dict[str, VoicePack] = {}
        first_default: str | None = None
        placeholder_default: str | None = None
        for pack_dir in pack_dirs:
            try:
                pack = VoicePack.load(Path(pack_dir))
            except errors.VoicePackError as exc:
                if strict:
                    raise
                _LOGGER.error("skipping voice pack %s: %s", pack_dir, exc.message)
                continue
            manifest = pack.manifest
            tiers = tuple(manifest.tiers)
            self._packs.setdefault(manifest.pack_id, pack)
            for voice_id, spec in manifest.voices.items():
                if voice_id in self._voices:
                    raise errors.VoicePackError(
                        f"voice {voice_id!r} of pack {manifest.pack_id!r} is already provided by pack "
                        f"{self._voices[voice_id].info.pack_id!r}"
                    )
                info = VoiceInfo(voice_id, spec.name, spec.language, manifest.pack_id, tiers)
                self._voices[voice_id] = Voice(info, pack, pack.adapters[voice_id])
            if manifest.placeholder:
                placeholder_default = placeholder_default or manifest.default_voice
            elif first_default is None:
                first_default = manifest.default_voice
        if default is not None and default not in self._voices:
            raise errors.UnknownVoice(f"default voice {default!r} is not installed")
        self._default = default if default is not None else first_default or placeholder_default

    @property
    def default_id(self) -> str:
        """The voice used when a request names none."""
        if self._default is None:
            raise errors.UnknownVoice("no voices installed")
        return self._default

    def list(self) -> list[VoiceInfo]:
        """Installed voices, sorted by id."""
        return [self._voices[k].info for k in sorted(self._voices)]

    def get(self, voice_id: str) -> Voice:
        """The voice ``voice_id``; UnknownVoice if it is not installed."""
        try:
            return self._voices[voice_id]
        except KeyError:
            raise errors.UnknownVoice(f"voice {voice_id[:64]!r} is not installed") from None

    def packs(self) -> Mapping[str, VoicePack]:
        """Loaded packs by pack id: the base models installed voices may bind to."""
        return dict(self._packs)

    def put(self, voice: Voice) -> None:
        """Add or replace an installed (bundle) voice; a pack's own voice is never replaced."""
        current = self._voices.get(voice.info.id)
        if not voice.info.from_bundle or current is not None and not current.info.from_bundle:
            raise errors.BundleIncompatible(f"voice id {voice.info.id!r} belongs to pack {voice.info.pack_id!r}")
        self._voices = {**self._voices, voice.info.id: voice}

    def remove(self, voice_id: str) -> Voice:
        """Forget an installed (bundle) voice; UnknownVoice or VoiceNotRemovable otherwise."""
        voice = self.get(voice_id)
        if not voice.info.from_bundle:
            raise errors.VoiceNotRemovable(
                f"voice {voice_id!r} is built into pack {voice.info.pack_id!r}; only installed bundles can be removed"
            )
        # A new dict, not an in-place delete: readers on other threads iterate a stable snapshot.
        self._voices = {k: v for k, v in self._voices.items() if k != voice_id}
        return voice
