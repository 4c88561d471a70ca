#!/usr/bin/env bash
# The sweep runner against the serial loop on one card (scripts/sweep_gpu.py says what runs):
#   bash scripts/sweep_gpu.sh                  # on the device machine, outputs under $OUT
#   SWEEP_EPOCHS=300 bash scripts/sweep_gpu.sh     # fits one 10-minute device call
#   SWEEP_FRACTIONS=1,0.5,0.25 bash scripts/sweep_gpu.sh   # which GPU fraction pays
#   SWEEP_TINY=1 bash scripts/sweep_gpu.sh     # CPU rehearsal at smoke sizes (the plumbing)
# At the protocol size the cost model says ~8 H200-minutes per executor (the serial loop, then one
# Ray run per GPU fraction; not measured yet): CAP (default 590 s) bounds the whole run, and
# $OUT/sweep_gpu.json keeps every run that finished.
# Needs python3 with torch, torchvision, safetensors (+ ray[client]==2.60.0 for the Ray runs;
# without it only the serial loop runs) and CIFAR-10 as gpu-data/cifar10-jpg.tar.xz
# (git-ignored; name it in the device call's carry) or LADD_SHARED_DATA.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
if [ -z "${LADD_SHARED_DATA:-}" ] && [ -f gpu-data/cifar10-jpg.tar.xz ]; then
  export LADD_SHARED_DATA=gpu-data
fi
export LADD_CACHE_DIR="${LADD_CACHE_DIR:-$PWD/.ladd-cache}"
export OUT="${OUT:-ladd-workspace/sweep-gpu-out}"
mkdir -p "$OUT"
timeout --kill-after=10 "${CAP:-590}" python3 -u scripts/sweep_gpu.py 2>&1 | tee "$OUT/sweep_gpu.txt"
exit "${PIPESTATUS[0]}"
