"""Experiment for docs/design/adapters-v2.md: how far would per-block FiLM deltas take a clone (float torch only)?

    python tools/experiments/clone_film_deltas.py --blocks decoder --pull 0.1 -- <clone_voice.py arguments>

Runs ``tools/clone_voice.py`` unchanged, except that after the speaker vector is fitted a second stage
fits one additive delta per FiLM (γ and β, ``2 × dim`` floats per block) in the acoustic model's
decoder (or every acoustic block), with an L2 pull to zero and early stopping on the held-out clips.
The deltas live only in this process: the report's similarity and WER include them, the adapter file
and any bundle do not (the shipped graphs have no input for them yet). Nothing here is a product path.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[2] / "daemon")]

import clone_voice  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from voice import clone  # noqa: E402
from voice.acoustic import losses  # noqa: E402


def with_deltas(blocks_of: str, pull: float, lr: float = 0.003, steps: int = 400, patience: int = 6):  # type: ignore[no-untyped-def]
    """A replacement for ``clone.fit_speaker``: the original, then the delta stage."""
    fit_vector = clone.fit_speaker

    def fit(model, names, train, held, settings=clone.FitSettings(), progress=True):  # type: ignore[no-untyped-def]
        result = fit_vector(model, names, train, held, settings, progress)
        blocks = list(model.decoder) if blocks_of == "decoder" else [
            *model.encoder, *model.duration.blocks, *model.pitch.blocks, *model.energy.blocks, *model.decoder]
        deltas = [nn.Parameter(torch.zeros(b.film.out_features)) for b in blocks]
        clone_row = torch.as_tensor(result.speaker).float()

        def add(delta: nn.Parameter):  # type: ignore[no-untyped-def]
            # Only the clone's own vector gets the deltas: the report's base-voice figures stay the base voice's.
            def hook(_module, inputs, out):  # type: ignore[no-untyped-def]
                speaker = inputs[0]
                return out + delta if torch.allclose(speaker, clone_row.expand_as(speaker)) else out
            return hook

        for block, delta in zip(blocks, deltas):
            block.film.register_forward_hook(add(delta))
        opt = torch.optim.Adam(deltas, lr=lr)
        train_batch, held_batch = clone._batch(train, model), clone._batch(held, model)

        def held_loss() -> float:
            with torch.no_grad():
                return float(losses(model, held_batch)["total"])

        best, best_values, stale = held_loss(), [d.detach().clone() for d in deltas], 0
        start = best
        for step in range(1, steps + 1):
            objective = losses(model, train_batch)["total"] + pull * sum(torch.mean(d**2) for d in deltas)
            opt.zero_grad(set_to_none=True)
            objective.backward()
            opt.step()
            if step % 10 == 0:
                value = held_loss()
                if value < best:
                    best, best_values, stale = value, [d.detach().clone() for d in deltas], 0
                else:
                    stale += 1
                if stale >= patience:
                    break
        with torch.no_grad():
            for d, v in zip(deltas, best_values):
                d.copy_(v)
        n = sum(d.numel() for d in deltas)
        print(f"FiLM deltas ({blocks_of}, {len(blocks)} blocks, {n} floats): held-out total {start:.4f} → {best:.4f} "
              f"after {step} steps", flush=True)
        return result

    return fit


def main(argv: list[str] | None = None) -> int:
    """Patch the fit, run clone_voice with the remaining arguments."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", choices=("decoder", "all"), default="decoder")
    ap.add_argument("--pull", type=float, default=0.1)
    ap.add_argument("rest", nargs=argparse.REMAINDER, help="-- then clone_voice.py's arguments")
    args = ap.parse_args(argv)
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    if "--key" in rest:
        raise SystemExit("no --key: a bundle would not carry the deltas")
    clone.fit_speaker = with_deltas(args.blocks, args.pull)
    # The deltas hook the whole-model vector; the figures in docs/design/adapters-v2.md predate split adapters.
    return clone_voice.main(rest if "--rhythm" in rest else [*rest, "--rhythm", "clone"])


if __name__ == "__main__":
    sys.exit(main())
