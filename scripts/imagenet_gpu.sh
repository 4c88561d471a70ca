#!/usr/bin/env bash
# Issue 27's GPU figures in ONE device call (no data to carry: the sets are synthetic at the
# protocol's shape): ResNet-18 224 px throughput, ours vs a plain torchvision loop; one epoch of
# Table 3's IPC 10 LADD run (x 300 = the measured cost of a seed); DDP over every GPU.
#   bash scripts/imagenet_gpu.sh                     # on the device machine; records in $OUT
#   TINY=1 DEVICE=cpu bash scripts/imagenet_gpu.sh   # the CPU rehearsal (tests/bench/test_imagenet_speed.py)
# Device call: run(command="bash scripts/imagenet_gpu.sh", timeout_s=600). Then copy the figures,
# with card, date and command, into docs/benchmarks.md and replace the ESTIMATED tv_resnet18 row
# of ladd/sweep/cost.py with the measured one.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT_DIR="${OUT:-imagenet-out}"
mkdir -p "$OUT_DIR"
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
ARGS=(--out "$OUT_DIR/imagenet.json" --stages "${STAGES:-throughput,epoch,ddp}")
[ -n "${TINY:-}" ] && ARGS+=(--tiny)
[ -n "${DEVICE:-}" ] && ARGS+=(--device "$DEVICE")
timeout "${BUDGET:-560}" "$PY" -m bench.imagenet_speed "${ARGS[@]}" 2>&1 | tee "$OUT_DIR/imagenet.log"
exit "${PIPESTATUS[0]}"
