"""The INT8 attribution experiment: reading the INT8 graphs' output grids and snapping float outputs to them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert.interpreter")
pytest.importorskip("soundfile")
pytest.importorskip("pyworld")

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools" / "experiments"))

import int8_attribution  # noqa: E402
from myna.inference.runtime import Graph  # noqa: E402
from myna.voices import GRAPH_ROLES, VoicePack  # noqa: E402

PACK = REPO / "models" / "placeholder"


def test_every_output_of_an_int8_pack_has_its_grid() -> None:
    grids = int8_attribution.output_grids(PACK, "tiny")
    pack = VoicePack.load(PACK)
    names = {o.name for role in GRAPH_ROLES for o in pack.manifest.tiers["tiny"].graphs[role].outputs}
    assert set(grids) == names
    assert all(scale > 0 and -128 <= zero <= 127 for scale, zero in grids.values())


def test_snapped_outputs_land_on_the_grid_and_the_patch_comes_off() -> None:
    grids = int8_attribution.output_grids(PACK, "tiny")
    pack = VoicePack.load(PACK)
    spec = pack.manifest.tiers["tiny"].graphs["encoder"]
    first = spec.outputs[0].name
    graph = Graph(pack.graph_path("tiny", "encoder"), spec, 1)
    graph.inputs["phoneme_ids"][0, :5] = [1, 5, 6, 7, 2]
    graph.run()
    plain = graph.outputs[first].copy()
    undo = int8_attribution.snap_outputs({first: (0.37, 3)}, (first,))
    try:
        graph.run()
        steps = graph.outputs[first] / 0.37
    finally:
        undo()
    assert np.allclose(steps, np.rint(steps), atol=1e-4)
    assert not np.allclose(plain / 0.37, np.rint(plain / 0.37), atol=1e-4)  # the graph's own output is finer
    graph.run()
    np.testing.assert_array_equal(graph.outputs[first], plain)
    assert first in grids
