#!/usr/bin/env bash
# Proves, on a machine with an NVIDIA GPU, that the reference PyTorch workload trains on CUDA through
# the same runtime protocol (flip.runtime.v1 over a unix socket) that the trust gateway serves: two
# simulated trusts, three rounds, FedAvg between them (tools/gpu/runtime_stub.py plays gateways and hub).
# Needs python3 with torch (CUDA) and numpy; no Node, Docker or network. Takes well under a minute.
#
#   tools/gpu/prove-gpu.sh                      # GPU run: fails unless both workloads trained on CUDA
#   FLIP_PROVE_GPUS=0 tools/gpu/prove-gpu.sh    # the same on the CPU (a dry run anywhere with torch)
#
# The last line on stdout is the JSON summary; with $OUT set it is also written to $OUT/gpu-proof.json.
set -uo pipefail
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-python3}
GPUS=${FLIP_PROVE_GPUS:-1}
ROUNDS=${FLIP_PROVE_ROUNDS:-3}
CONFIG=${FLIP_PROVE_CONFIG:-'{"local_epochs": 2, "samples": 512, "image_size": 64, "batch_size": 32}'}

echo "== environment" >&2
"$PYTHON" - >&2 <<'EOF' || { echo "prove-gpu: python3 with torch and numpy is needed" >&2; exit 2; }
import sys, numpy, torch
print("python", sys.version.split()[0], "| numpy", numpy.__version__, "| torch", torch.__version__, "| CUDA build", torch.version.cuda, "| cuda available", torch.cuda.is_available())
for i in range(torch.cuda.device_count()):
    print(f"cuda:{i}", torch.cuda.get_device_name(i))
EOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2

args=(--workload workloads/train-torch/train.py --trusts 2 --rounds "$ROUNDS" --gpus "$GPUS" --config "$CONFIG" --timeout 480)
if [ "$GPUS" -gt 0 ]; then args+=(--require-cuda); fi

echo "== 2 trusts x $ROUNDS rounds, gpus=$GPUS" >&2
summary=$(timeout 540 "$PYTHON" -B tools/gpu/runtime_stub.py "${args[@]}")
status=$?
echo "$summary"
if [ -n "${OUT:-}" ] && [ -n "$summary" ]; then echo "$summary" >"$OUT/gpu-proof.json"; fi
exit $status
