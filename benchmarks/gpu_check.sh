#!/usr/bin/env bash
# GPU check of the `gpu` device and the `torch` framework. Not run by CI: run it by
# hand on a machine with an NVIDIA GPU, its driver (nvidia-smi) and this repository.
#
#   bash benchmarks/gpu_check.sh            # ~2-10 min, mostly installing torch
#
# It installs npf with its torch extra into a virtualenv (VENV, default .venv-gpu),
# runs a 2-copy torch benchmark on device "gpu" and prints the report. The model
# refuses inputs that are not on the GPU, so status "ok" proves that the inputs were
# moved (x = x.to(device)) and every call ran on CUDA.
#
# Note: `pip install -e .[torch]` pins torch==2.13.0. On Linux x86_64 that PyPI wheel
# is a CUDA build (a download of several GB); where the local index offers only a CPU
# build, install a CUDA one first (e.g. from the PyTorch index for your CUDA version,
# same version 2.13.0) — the check stops early if torch cannot see a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${VENV:-.venv-gpu}
DURATION=${DURATION:-5}

echo "== GPUs (nvidia-smi -L)"
nvidia-smi -L

echo "== install npf[torch] into $VENV"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".[torch]"

"$VENV/bin/python" - <<'EOF'
import sys
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(),
      "devices", torch.cuda.device_count())
if not torch.cuda.is_available():
    sys.exit("torch sees no CUDA GPU: install a CUDA build of torch==2.13.0 (see the note at the top)")
EOF

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat >"$work/gpu_model.py" <<'EOF'
import torch


class Mlp(torch.nn.Module):
    """(batch, 1024) -> (batch, 1024) through four 1024x1024 layers; refuses CPU inputs."""

    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(*[torch.nn.Linear(1024, 1024) for _ in range(4)])

    def forward(self, x):
        if not x.is_cuda:
            raise RuntimeError(f"input on {x.device}, expected a CUDA device")
        return self.layers(x)
EOF

n_gpus=$(nvidia-smi -L | grep -c '^GPU ' || true)
if [ "${n_gpus:-0}" -ge 2 ]; then
    device='"gpu"'                                                  # one GPU per copy
else
    device='{"type": "gpu", "options": {"copies_per_gpu": 2}}'     # both copies share GPU 0
fi

cat >"$work/spec.json" <<EOF
{
  "name": "gpu-check",
  "model": {"framework": "torch", "target": "gpu_model.py:Mlp"},
  "inputs": [{"shape": [32, 1024], "dtype": "float32"}],
  "batch_sizes": [32],
  "device": $device,
  "n_models": [1, 2],
  "workers_per_model": [1],
  "duration_s": $DURATION
}
EOF

echo "== spec"
cat "$work/spec.json"

echo "== run"
status=0
"$VENV/bin/python" -m npf_core run "$work/spec.json" --output-dir "$work/out" || status=$?

echo "== report"
"$VENV/bin/python" - "$("$VENV/bin/python" -c "import sys; from npf_core.results import resolve_results; print(resolve_results(sys.argv[1]))" "$work/out")" <<'EOF'
import json
import sys

data = json.load(open(sys.argv[1]))
keys = ("config_id", "status", "device_type", "devices", "n_models", "start_method",
        "throughput_avg", "latency_ms_p50", "latency_ms_p99", "total_infs")
for r in data["reports"]:
    print({k: r.get(k) for k in keys})
    if r.get("status") != "ok":
        print("  error:", (r.get("error") or {}).get("message"))
EOF
echo "npf exit code: $status (0 = every configuration ok)"
exit "$status"
