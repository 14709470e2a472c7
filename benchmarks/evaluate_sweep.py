"""Accuracy beside speed: a model-index sweep in evaluate mode (issue 12).

Builds a small torch MLP classifier and three variants of it, as a Neuron compile
with several auto-cast settings would — float32, bfloat16 and float16 weights and
arithmetic — writes a model index, and runs npf's evaluate mode over a labelled
synthetic dataset with the float32 eager model as the reference. Prints one row per
variant: throughput, p50, accuracy and its drop, and the agreement figures.

Also checks, on the same run, the two exactness goals of evaluate mode:

- the float32 variant (the reference itself, traced) agrees exactly: max error 0;
- 2 copies x 2 workers give the same metrics as 1 copy x 1 worker.

    python benchmarks/evaluate_sweep.py [--examples 512]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import torch

import npf_core as npf
from npf_core.compilation import model_index

FEATURES, HIDDEN, CLASSES = 64, 256, 10


class Mlp(torch.nn.Module):
    dtype = torch.float32

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = torch.nn.Linear(FEATURES, HIDDEN)
        self.b = torch.nn.Linear(HIDDEN, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.dtype
        h = torch.relu(torch.nn.functional.linear(x.to(d), self.a.weight.to(d), self.a.bias.to(d)))
        return torch.nn.functional.linear(h, self.b.weight.to(d), self.b.bias.to(d)).float()


class MlpBf16(Mlp):
    dtype = torch.bfloat16


class MlpFp16(Mlp):
    dtype = torch.float16


def dataset(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Labels: the float32 model's class, except every 20th example (a 95% ceiling)."""
    g = torch.Generator().manual_seed(1)
    net = Mlp().eval()
    out = []
    with torch.no_grad():
        for k in range(n):
            x = torch.randn(4, FEATURES, generator=g)
            y = net(x).argmax(-1)
            if k % 20 == 0:
                y = (y + 1) % CLASSES
            out.append((x, y))
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--examples", type=int, default=512, help="examples (batches of 4)")
    args = p.parse_args()
    data = dataset(args.examples)
    example = data[0][0]
    with tempfile.TemporaryDirectory() as tmp:
        entries = []
        for level, cls in enumerate((Mlp, MlpBf16, MlpFp16)):
            f = Path(tmp) / f"mlp_l{level}.pt"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.jit.save(torch.jit.trace(cls().eval(), example), str(f))
            entries.append(model_index.create(str(f), model_name="mlp", batch_size=4, performance_level=level))
        index = model_index.save(model_index.append(*entries), str(Path(tmp) / "mlp_index.json"))
        print(f"evaluating {len(entries)} variants on {args.examples} batches of 4 ...", file=sys.stderr)
        reports = npf.torch.evaluate(
            index, data, metrics=["accuracy", "topk"], workers_per_model=1, device_type="cpu",
            eval_reference={"target": Mlp, "framework": "torch"},
        )  # fmt: skip
        split = npf.torch.evaluate(
            index, data, metrics=["accuracy", "topk"], n_models=2, workers_per_model=2, device_type="cpu",
            eval_reference={"target": Mlp, "framework": "torch"}, pipeline_sizes=1,
        )  # fmt: skip
    cols = ("level", "inf/s", "p50 ms", "accuracy", "drop", "max|err|", "mean|err|", "cosine", "top1 agr")
    print(" ".join(f"{c:>10}" for c in cols))
    def level(r: dict) -> int:
        return int(r["performance_level"])

    base = next(r for r in reports if level(r) == 0)
    for r in sorted(reports, key=level):
        if r["status"] != "finished":
            print(f"{level(r):>10} error: {(r.get('error') or {}).get('message', '')}")
            continue
        m = r["metrics"]
        row = (
            level(r), f"{r['throughput_avg']:.0f}", f"{r['latency_ms_p50']:.3f}", f"{m['accuracy']:.4f}",
            f"{base['metrics']['accuracy'] - m['accuracy']:+.4f}", f"{m['ref_max_abs_error']:.2e}",
            f"{m['ref_mean_abs_error']:.2e}", f"{m['ref_cosine_similarity']:.6f}", f"{m['ref_top1_agreement']:.4f}",
        )  # fmt: skip
        print(" ".join(f"{v:>10}" for v in row))
    exact = base["metrics"]["ref_max_abs_error"] == 0.0
    same = all(
        a["metrics"] == b["metrics"]
        for a, b in zip(sorted(reports, key=level), sorted(split, key=level), strict=True)
    )
    print(f"VERDICT reference-itself-exact: {'MET' if exact else 'MISSED'} - max abs error "
          f"{base['metrics']['ref_max_abs_error']!r}")  # fmt: skip
    print(f"VERDICT split-exact: {'MET' if same else 'MISSED'} - 2 copies x 2 workers vs 1 x 1, all metrics equal")
    return 0 if exact and same else 1


if __name__ == "__main__":
    raise SystemExit(main())
