#!/usr/bin/env bash
# GPU check of the onnxruntime framework on npf's `gpu` device. Not run by CI: run it by
# hand on a machine with an NVIDIA GPU, its driver (nvidia-smi) and the npf repository.
#
#   bash examples/npf-onnxruntime/benchmarks/gpu_check.sh     # a few minutes, mostly pip
#
# It makes a virtualenv (VENV, default .venv-ort-gpu at the repository root) with npf,
# this plugin and onnxruntime-gpu (in place of onnxruntime: both install the module
# `onnxruntime`), then:
#   1. runs a 2 x 2 sweep (copies 1, 2 x workers 1, 2) of a MatMul+Relu model on device
#      "gpu". A copy whose session does not run CUDAExecutionProvider fails (the plugin
#      checks session.get_providers() and turns off onnxruntime's quiet CPU fallback), so
#      status "ok" everywhere means every copy ran on CUDA, on its own GPU;
#   2. compares npf's p50 with a bare InferenceSession.run loop on the same GPU
#      (p50_vs_bare.py --device gpu).
# It exits non-zero if either fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
plugin=$(dirname "$here")
root=$(cd "$plugin/../.." && pwd)
cd "$root"

PY=${PYTHON:-python3}
VENV=${VENV:-.venv-ort-gpu}
DURATION=${DURATION:-5}

echo "== GPUs (nvidia-smi -L)"
nvidia-smi -L

echo "== install npf, npf-onnxruntime and onnxruntime-gpu into $VENV"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install -q)
"${pip[@]}" --upgrade pip
"${pip[@]}" "$root"
"${pip[@]}" --no-deps "$plugin"            # its `onnxruntime` dependency is the CPU build
"$VENV/bin/python" -m pip uninstall -q -y onnxruntime 2>/dev/null || true
# the [cuda,cudnn] extras bring CUDA 12 and cuDNN 9 as pip packages (onnxruntime-gpu >= 1.21),
# which the plugin loads with onnxruntime.preload_dlls(); without them, the system's CUDA
"${pip[@]}" "onnxruntime-gpu[cuda,cudnn]" onnx || "${pip[@]}" onnxruntime-gpu onnx

"$VENV/bin/python" - <<'EOF'
import sys
import onnxruntime as ort
print("onnxruntime", ort.__version__, "providers", ort.get_available_providers())
if "CUDAExecutionProvider" not in ort.get_available_providers():
    sys.exit("this onnxruntime has no CUDAExecutionProvider: is onnxruntime-gpu installed (and not onnxruntime)?")
EOF

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$VENV/bin/python" - "$work/model.onnx" <<'EOF'
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

size = 2048
w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((size, size)).astype(np.float32), "W")
graph = helper.make_graph(
    [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
    "matmul_relu",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", size])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", size])],
    [w],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
model.ir_version = 8
onnx.save(model, sys.argv[1])
EOF

n_gpus=$(nvidia-smi -L | grep -c '^GPU ' || true)
if [ "${n_gpus:-0}" -ge 2 ]; then
    device='"gpu"'                                                  # one GPU per copy
else
    device='{"type": "gpu", "options": {"copies_per_gpu": 2}}'     # both copies share GPU 0
fi

cat >"$work/spec.json" <<EOF
{
  "name": "ort-gpu-check",
  "model": {"framework": "onnxruntime", "path": "model.onnx"},
  "inputs": [{"shape": [64, 2048], "dtype": "float32"}],
  "batch_sizes": [64],
  "device": $device,
  "n_models": [1, 2],
  "workers_per_model": [1, 2],
  "duration_s": $DURATION
}
EOF
echo "== spec"
cat "$work/spec.json"

echo "== run"
status=0
"$VENV/bin/python" -m npf_core run "$work/spec.json" --output-dir "$work/out" || status=$?

echo "== report"
"$VENV/bin/python" - "$work/out" <<'EOF'
import json
import sys
from pathlib import Path

(results,) = sorted(Path(sys.argv[1]).rglob("results.json"))
keys = ("config_id", "status", "device_type", "devices", "n_models", "workers_per_model", "start_method",
        "throughput_avg", "latency_ms_p50", "latency_ms_p99", "load_avg_ms")
for r in json.loads(results.read_text())["reports"]:
    print({k: r.get(k) for k in keys})
    if r.get("status") != "ok":
        print("  error:", (r.get("error") or {}).get("message"))
EOF
echo "npf exit code: $status (0 = every configuration ok: every copy ran CUDAExecutionProvider)"

echo "== p50: npf vs a bare InferenceSession.run loop, same GPU"
p50=0
"$VENV/bin/python" "$here/p50_vs_bare.py" --device gpu --batch 64 --size 2048 --reps 3 --duration "$DURATION" || p50=$?
[ "$status" -eq 0 ] && [ "$p50" -eq 0 ]
