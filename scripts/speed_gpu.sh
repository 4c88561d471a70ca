#!/usr/bin/env bash
# Issue 15's measurements in ONE device call: at most BUDGET seconds (default 540, i.e. 9 of the
# call's 10 minutes), every stage under its own cap, records written as each finishes.
#   bash scripts/speed_gpu.sh                      # on the device machine; outputs under $OUT
#   TINY=1 DEVICE=cpu bash scripts/speed_gpu.sh    # CPU rehearsal at smoke sizes (the plumbing;
#                                                  # tests/scripts/test_speed_gpu.py runs it)
#   E2E_PRECISION=bf16 bash scripts/speed_gpu.sh   # `ladd train` runs of ours with --precision
#                                                  # (default: the CLI's own default)
# Device call: run(command="bash scripts/speed_gpu.sh", carry=["gpu-data"], timeout_s=600), with
# CIFAR-10 copied to gpu-data/cifar10-jpg.tar.xz (git-ignored). Then, on this machine:
#   python -m bench.speed_report <files_at>/speed.json --write --session "<card>, <date>"
# which appends the records to docs/benchmarks.json and rewrites the results section of
# docs/benchmarks.md.
#
# Stages, in order of importance (a stage that finds the budget spent is skipped and logged):
#   info      the card, torch, the ceilings' context
#   prep32    random real IPC 10 of CIFAR-10, a 1-epoch labeler, LADD N 5 (untimed)
#   prep128   the same at 128 px on the procedural `shapes` source (synthetic data)
#   e2e32     `ladd train` wall time: reference vs ours, cold and warm compile cache, 50 epochs
#   e2e128    the same at 128 px (no 50-epoch runs: the reference alone would take 2 minutes)
#   short     the dashboard's short training at 128 px as a user meets it: 1 seed x 50 epochs,
#             CLI defaults (the plan picks the engine: at 128 px the stacked step, compiled),
#             reference measured too; each record names the engine
#   dense     dense labels: eager fp32 at 256 / 4096, compiled fp32, eager / compiled bf16
#   eval      test-set evaluation: per model fp32 vs all seeds stacked in bf16
#   parity    5-seed accuracy, reference fp32 vs ours with the defaults (bf16), 100 epochs
#   levers32  FastOptions variants at 32 px (ConvNet-D3): channels-last, CUDA graphs, tails
#   levers128 the same at 128 px (ConvNet-D5)
#   cost      the cost table: AlexNet, VGG11, ResNet18, ViT, ConvNet at 32 and 128 px
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT_DIR="${OUT:-speed-out}"
mkdir -p "$OUT_DIR"
if [ -z "${LADD_SHARED_DATA:-}" ] && [ -f gpu-data/cifar10-jpg.tar.xz ]; then
  export LADD_SHARED_DATA=gpu-data
fi
WORK="${SPEED_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/ladd-speed.XXXXXX")}"
mkdir -p "$WORK"
export LADD_CACHE_DIR="$WORK/data-cache"  # decoded sources, shared by every stage
unset TORCHINDUCTOR_CACHE_DIR TRITON_CACHE_DIR LADD_FAST_COMPILE LADD_COMPILE_CACHE
COMPILE_DIR="$WORK/compile"  # compile cache of the in-process benchmarks (not CC: the C compiler)
JSON="$OUT_DIR/speed.json"
LOG="$OUT_DIR/session.log"
STAGES_LOG="$OUT_DIR/stages.txt"
BUDGET="${BUDGET:-540}"
START=$(date +%s)
DEVICE="${DEVICE:-auto}"

log() { echo "[$(date -u +%FT%TZ)] $*" | tee -a "$LOG"; }
stage() {  # stage NAME CAP_SECONDS COMMAND...
  local name=$1 cap=$2 t0 left
  shift 2
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then
    log "skip $name: not in ONLY"
    return
  fi
  t0=$(date +%s)
  left=$((BUDGET - (t0 - START) - 3))
  if [ "$left" -lt 8 ]; then
    log "skip $name: budget spent"
    return
  fi
  cap=$((cap * CAP_SCALE))
  if [ "$cap" -gt "$left" ]; then cap=$left; fi
  log "start $name (cap ${cap}s): $*"
  echo "=== $name ===" >>"$STAGES_LOG"
  timeout --kill-after=3 "$cap" "$@" 2>&1 | tee -a "$STAGES_LOG"
  log "end $name rc=${PIPESTATUS[0]} after $(($(date +%s) - t0))s"
}

if [ -n "${TINY:-}" ]; then
  CAP_SCALE="${CAP_SCALE:-10}"  # a shared CPU starts Python slowly; the caps are GPU-sized
  tiny=(--tiny)
  dev=(--device "$DEVICE")
  src32=(--source shapes)
  cost=(--archs convnet alexnet --sizes 32)
  levers=(--variants baseline grouped-nhwc)
  parity=(--configs)
  sizes=(32)
  short=(--size 32 "${src32[@]}")
else
  CAP_SCALE="${CAP_SCALE:-1}"
  tiny=()
  dev=(--device "$DEVICE")
  src32=()
  cost=(--archs alexnet vgg11 resnet18 vit convnet --sizes 32 128 --window 1.0)
  levers=(--window 1.5)
  parity=(--configs --parity-epochs "${PARITY_EPOCHS:-100}")
  sizes=(32 128)
  short=(--size 128)
fi
e2e=(python3 -u -m bench.e2e_train "${tiny[@]}" --workspace "$WORK/ws" --cache-root "$WORK/e2e")
if [ -n "${E2E_PRECISION:-}" ]; then  # e.g. bf16 while the CLI's default is still fp32
  e2e+=(--precision "$E2E_PRECISION")
fi

stage info 20 bash -c 'nvidia-smi || true; python3 -c "import torch; print(torch.__version__, \
torch.cuda.get_device_name() if torch.cuda.is_available() else \"no CUDA\")"'
stage prep32 75 "${e2e[@]}" --size 32 "${src32[@]}" --prep-only
if [[ " ${sizes[*]} " == *" 128 "* ]]; then
  stage prep128 45 "${e2e[@]}" --size 128 --prep-only
fi
stage e2e32 135 "${e2e[@]}" --size 32 "${src32[@]}" --json-out "$JSON"
if [[ " ${sizes[*]} " == *" 128 "* ]]; then
  stage e2e128 95 "${e2e[@]}" --size 128 --no-short --json-out "$JSON"
fi
stage short 100 "${e2e[@]}" "${short[@]}" --short-only --short-seeds 1 --json-out "$JSON"
stage dense 40 python3 -u -m bench.dense_speed "${tiny[@]}" "${dev[@]}" --batches 256 4096 \
  --json-out "$JSON"
stage eval 20 python3 -u -m bench.eval_speed "${tiny[@]}" "${dev[@]}" --json-out "$JSON"
stage parity 55 python3 -u -m bench.deploy_speed "${tiny[@]}" "${dev[@]}" "${parity[@]}" \
  --json-out "$JSON"
stage levers32 75 python3 -u -m bench.levers "${tiny[@]}" "${dev[@]}" "${levers[@]}" \
  --configs convnet_d3-32px-ipc10-n5 --cache-dir "$COMPILE_DIR" --json-out "$JSON"
if [[ " ${sizes[*]} " == *" 128 "* ]]; then
  stage levers128 60 python3 -u -m bench.levers "${dev[@]}" "${levers[@]}" \
    --configs convnet_d5-128px-ipc10-n5 --cache-dir "$COMPILE_DIR" --json-out "$JSON"
fi
stage cost 90 python3 -u -m bench.cost_table "${tiny[@]}" "${dev[@]}" "${cost[@]}" \
  --cache-dir "$COMPILE_DIR" --json-out "$JSON"
if [ -f "$JSON" ]; then
  python3 -m bench.speed_report "$JSON" >>"$STAGES_LOG" 2>&1 || log "speed_report failed"
fi
log "session done after $(($(date +%s) - START))s"
