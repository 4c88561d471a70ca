#!/usr/bin/env bash
# The sweep runner against the serial loop on one card (scripts/sweep_gpu.py says what runs):
#   bash scripts/sweep_gpu.sh                  # on the device machine, outputs under $OUT
#   SWEEP_FRACTIONS=0.5 SWEEP_EPOCHS=500 bash scripts/sweep_gpu.sh   # a shorter slice
#   SWEEP_TINY=1 bash scripts/sweep_gpu.sh     # CPU rehearsal at smoke sizes (the plumbing)
# At the protocol size expect about 5 minutes per executor on an H200 (the serial loop, then one
# Ray run per GPU fraction; unmeasured): CAP (default 590 s) bounds the whole run.
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
