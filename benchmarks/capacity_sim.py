"""The capacity search against queues whose capacity is known: its statistical error
and its interval's coverage, apart from any machine's noise.

    python benchmarks/capacity_sim.py [--quick] [--reps N] [--budget MS]

The search (``npf_core.supervisor.capacity.CapacitySearch``, with the spec's
defaults) runs as it does in npf, but each probe is answered by
``npf_core.results.queueing.SimulatedCopies``: every copy an M/G/c queue (c its
workers) fed its share of Poisson arrivals, service times drawn from a gamma
distribution of mean 2.1 ms and coefficient of variation 0.25 (a 2 ms sleep on a
quiet machine). The true capacity is ``capacity_at`` on the same service times
(n copies x the M/G/c capacity at the budget). ``--reps`` searches per
configuration, each with its own seed.

Goals: the search's error at most 7.5% (one standard deviation, so that the
issue's 15% is two) in every configuration, its interval covering the true
capacity in at least 90% of all the searches (and 80% of each configuration's),
and at most 60 s of probes per configuration (median).
"""

from __future__ import annotations

import logging

import anyio
import numpy as np
import structlog
from _common import banner, parse_args, progress, table, verdict

from npf_core.results.queueing import SimulatedCopies, capacity_at
from npf_core.spec.config import RunConfig
from npf_core.spec.schema import Capacity
from npf_core.supervisor.capacity import CapacityOutcome, CapacitySearch

SWEEP = ((1, 1), (1, 2), (2, 1), (2, 2))  # (copies, workers)


def config(copies: int, workers: int) -> RunConfig:
    return RunConfig(config_id=f"sim-n{copies}-w{workers}", model_name="sim", framework="python",
                     model_kind="target", model_ref="sim", model_filename="sim", input_idx=0, batch_size=1,
                     n_models=copies, workers_per_model=workers, pipeline_size=1, start_method="fork",
                     device_type="cpu")  # fmt: skip


async def run_one(search: CapacitySearch, cfg: RunConfig, sim: SimulatedCopies) -> CapacityOutcome:
    return (await search.search(cfg, sim, sim.window_s))[1]


def main() -> None:
    args = parse_args(__doc__, reps=(60, 10), budget=(10.0, 10.0))
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))  # no probe lines
    banner(f"capacity_sim: the search on simulated M/G/c copies, p99 <= {args.budget:g} ms", args)
    service = np.random.default_rng(0).gamma(16.0, 2.1e-3 / 16, 50_000)
    rows, ok, all_covered = [], True, 0
    for copies, workers in SWEEP:
        truth = copies * capacity_at(service, args.budget / 1000, servers=workers, n=400_000)
        errors, covered, seconds, probes = [], 0, [], []
        for rep in range(args.reps):
            sim = SimulatedCopies(service, copies, workers, seed=1000 * copies + 100 * workers + rep)
            sim.budget_ns = int(args.budget * 1e6)
            search = CapacitySearch(Capacity(p99_ms=args.budget))

            out = anyio.run(run_one, search, config(copies, workers), sim)
            errors.append((out.capacity or 0.0) / truth - 1)
            covered += (out.low or 0.0) <= truth <= (out.high or np.inf)
            seconds.append(sum(s for _, _, s in sim.probes))
            probes.append(len(sim.probes) - 1)
        e = np.asarray(errors)
        progress(f"{copies} x {workers}: sd {e.std():.1%}, coverage {covered}/{args.reps}")
        rows.append([f"{copies} x {workers}", f"{truth:,.0f}", f"{e.mean():+.1%}", f"{e.std():.1%}",
                     f"{np.abs(e).max():.1%}", f"{covered}/{args.reps}", f"{np.median(seconds):.0f}",
                     f"{max(seconds):.0f}", f"{np.median(probes):.0f}"])  # fmt: skip
        ok = ok and e.std() <= 0.075 and covered >= 0.8 * args.reps and np.median(seconds) <= 60
        all_covered += covered
    print()
    print(table(["copies x workers", "true /s", "mean error", "sd", "max |error|", "interval covers",
                 "probe s (median)", "probe s (max)", "probes (median)"], rows))  # fmt: skip
    print()
    n = args.reps * len(SWEEP)
    verdict("capacity-sim", ok and all_covered >= 0.9 * n,
            f"the interval covers the true capacity in {all_covered}/{n} searches (goal >= 90%); error sd <= 7.5%, "
            "coverage >= 80% and median probe time <= 60 s in each configuration: see the table")  # fmt: skip


if __name__ == "__main__":
    main()
