"""The bare timed loop for TensorFlow and MXNet models, in a fresh interpreter;
prints one JSON line (the figures of ``_bare_loop.py``).

    python benchmarks/_bare_loop_tf_mx.py --kind keras|saved|mxnet --path P \\
        --inputs '[{"shape": [2, 8]}]' --threads 1 --duration 3

The model is loaded and called the way a user would without npf:

- ``keras``: ``tf.keras.models.load_model(path, compile=False)``, called as
  ``f(x)`` with ``f = tf.function(lambda x: model(x, training=False))``;
- ``saved``: ``tf.saved_model.load(path).signatures["serving_default"](**inputs)``;
- ``mxnet``: ``mx.model.load_checkpoint``, one executor per thread
  (``sym.bind(mx.cpu(), ..., grad_req="null")``), ``exe.forward(is_train=False)`` then
  ``wait_to_read()`` on the outputs; the MXNet worker variables set to the thread
  count and ``OMP_NUM_THREADS`` to the CPU count // threads before ``import mxnet``,
  as npf's ``mxnet`` framework does for one copy.

Each thread then runs, from a common start, for ``--duration`` seconds::

    while perf_counter() < end:
        t0 = perf_counter_ns(); call(); t1 = perf_counter_ns(); lat.append(t1 - t0)
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from npf_core.wire.tensors import build_example


def keras_call(path: str, example: tuple[Any, ...]) -> Callable[[], Callable[[], Any]]:
    import tensorflow as tf

    model = tf.keras.models.load_model(path, compile=False)
    f = tf.function(lambda x: model(x, training=False))
    x = {k: tf.constant(v) for k, v in example[0].items()} if isinstance(example[0], dict) else tf.constant(example[0])
    return lambda: (lambda: f(x))


def saved_call(path: str, example: tuple[Any, ...]) -> Callable[[], Callable[[], Any]]:
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    sig = loaded.signatures["serving_default"]
    if isinstance(example[0], dict):
        kw = {k: tf.constant(v) for k, v in example[0].items()}
    else:
        kw = {next(iter(sig.structured_input_signature[1])): tf.constant(example[0])}
    return lambda: (lambda _keep=loaded: sig(**kw))  # _keep: the signature needs its object alive


def mxnet_call(path: str, example: tuple[Any, ...], threads: int) -> Callable[[], Callable[[], Any]]:
    for name in ("MXNET_CPU_TEMP_COPY", "MXNET_EXEC_NUM_TEMP", "MXNET_CPU_WORKER_NTHREADS", "MXNET_MP_WORKER_NTHREADS"):
        os.environ[name] = str(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0)) // threads)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import mxnet as mx
    prefix = path[: -len("-symbol.json")]
    sym, args, aux = mx.model.load_checkpoint(prefix, 0)
    data = [a for a in sym.list_arguments() if a not in args and not a.endswith("_label")]
    named = example[0] if isinstance(example[0], dict) else dict(zip(data, example, strict=True))

    def per_thread() -> Callable[[], Any]:  # one executor per thread
        inputs = {k: mx.nd.array(v, dtype=v.dtype) for k, v in named.items()}
        exe = sym.bind(mx.cpu(), args={**args, **inputs}, aux_states=aux, grad_req="null")

        def call() -> Any:
            exe.forward(is_train=False)
            for o in exe.outputs:
                o.wait_to_read()

        return call

    return per_thread


def main() -> None:
    import npf_core  # noqa: F401 - same import state as a benchmarker

    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=["keras", "saved", "mxnet"], required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--inputs", required=True, help="one spec input entry (JSON list of items)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--duration", type=float, required=True)
    args = parser.parse_args()
    example = build_example(json.loads(args.inputs), Path.cwd(), seed=0)
    if args.kind == "keras":
        make = keras_call(args.path, example)
    elif args.kind == "saved":
        make = saved_call(args.path, example)
    else:
        make = mxnet_call(args.path, example, args.threads)
    end = [0.0]
    start = [0.0]
    lats: list[list[int]] = [[] for _ in range(args.threads)]
    done: list[float] = []

    def go() -> None:
        start[0] = time.perf_counter()
        end[0] = start[0] + args.duration

    barrier = threading.Barrier(args.threads, action=go)

    def loop(lat: list[int]) -> None:
        call = make()
        call()  # warm-up (traces the tf.function, binds the executor)
        barrier.wait()
        perf_counter, perf_counter_ns, stop = time.perf_counter, time.perf_counter_ns, end[0]
        while perf_counter() < stop:
            t0 = perf_counter_ns()
            call()
            t1 = perf_counter_ns()
            lat.append(t1 - t0)
        done.append(perf_counter())

    threads = [threading.Thread(target=loop, args=(lats[i],)) for i in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_lat = np.concatenate([np.asarray(x, dtype=np.int64) for x in lats])
    calls = int(all_lat.size)
    elapsed = max(done) - start[0]
    print(json.dumps({"calls": calls, "elapsed_s": elapsed, "rate": calls / elapsed,
                      "p50_ns": float(np.percentile(all_lat, 50)), "p99_ns": float(np.percentile(all_lat, 99))}))


if __name__ == "__main__":
    main()
