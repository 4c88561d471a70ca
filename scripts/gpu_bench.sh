#!/usr/bin/env bash
# The GPU benchmark in one command (docs/benchmarks.md). Run from anywhere:
#   bash scripts/gpu_bench.sh
# Needs python3 with torch (2.11+), torchvision, safetensors, typer, rich, tqdm; nothing else.
# Appends GPU records to docs/benchmarks.json and copies every output to $OUT (when set).
# Sized for ~8 minutes on an H100 including torch.compile warm-up.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
OUT_DIR="${OUT:-bench-out}"
mkdir -p "$OUT_DIR"
if [ -f gpu-data/cifar10-jpg.tar.xz ]; then
  export LADD_SHARED_DATA=gpu-data
fi
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'; print(torch.__version__, torch.cuda.get_device_name())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT_DIR/gpu.txt" 2>&1 || true

# 1. Training speed: reference loop vs fast trainer (5 seeds), step parity, accuracy parity.
python3 -m bench.deploy_speed --seeds 5 --parity-epochs 100 \
  --json-out docs/benchmarks.json 2>&1 | tee "$OUT_DIR/deploy_speed.txt"
# 2. Dense labels (crops/s) and the crop preview.
python3 -m bench.dense_speed --json-out docs/benchmarks.json 2>&1 | tee "$OUT_DIR/dense_speed.txt"
# 3. Where the fast step's GPU time goes (the "what limits further gains" table).
python3 -m bench.profile_step --out "$OUT_DIR" 2>&1 | tee "$OUT_DIR/profile.txt" || true
cp docs/benchmarks.json "$OUT_DIR/benchmarks.json"
echo "done: figures in $OUT_DIR and docs/benchmarks.json"
