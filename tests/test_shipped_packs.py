"""The trained pack in models/myna-en keeps the issue's promises per tier: size, one XNNPACK partition per graph, voices."""

from __future__ import annotations

import pytest

from myna.catalog import packaged_voice_dir
from myna.inference.runtime import Graph
from myna.voices import VoicePack

SIZE_LIMIT = {"tiny": 3_000_000, "small": 8_000_000}
"""Bytes of model files per tier (the issue's budgets; base has none)."""


@pytest.fixture(scope="module")
def pack() -> VoicePack:
    return VoicePack.load(packaged_voice_dir() / "myna-en")


def test_every_shipped_tier_fits_its_size_budget(pack: VoicePack) -> None:
    for tier, spec in pack.manifest.tiers.items():
        size = sum(pack.graph_path(tier, role).stat().st_size for role in spec.graphs)
        assert size <= SIZE_LIMIT.get(tier, 20_000_000), (tier, size)


def test_every_graph_is_one_xnnpack_partition(pack: VoicePack) -> None:
    for tier, spec in pack.manifest.tiers.items():
        for role, graph_spec in spec.graphs.items():
            graph = Graph(pack.graph_path(tier, role), graph_spec, num_threads=1)
            assert graph.delegate_partitions() == 1, (tier, role)


def test_joe_is_the_default_and_the_other_speakers_ship_as_adapters(pack: VoicePack) -> None:
    voices = set(pack.manifest.voices)
    assert pack.manifest.default_voice == "joe"
    assert len(voices) >= 13 and {"joe", "flite-slt", "kokoro-jf_alpha"} <= voices
