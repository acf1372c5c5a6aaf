#!/usr/bin/env bash
# ms/step (plain, MW-Net, MFM, MLR-SNet) at batch 128 on ResNet-32 in fp32 and bf16, peak memory,
# and one paper-profile epoch of CIFAR-10-LT, on one GPU in at most 8 minutes (bench/gpu.py).
#   bash bench/gpu.sh                                   # on a GPU machine
#   bash bench/gpu.sh --device cpu --steps 2 --warmup 1 --batch 8 --epoch-images 16 --epoch-batch 8   # CPU smoke
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
echo "uptime: $(uptime)"
exec timeout --signal=INT 480 "$PY" bench/gpu.py "$@"
