#!/usr/bin/env bash
# The first wave's GPU work in one call (5.6 minutes on an H200, 2026-11-26); issue 15's
# measurements (end to end, levers, cost table, dense forms) are scripts/speed_gpu.sh:
#   bash scripts/gpu_session.sh                    # on the device machine, outputs under $OUT
#   STAGES=bench bash scripts/gpu_session.sh       # the benchmarks only (docs/benchmarks.md)
#   STAGES=study STUDY_ARGS="--distiller random --parts 6" bash scripts/gpu_session.sh
#   TINY=1 bash scripts/gpu_session.sh             # CPU rehearsal at smoke sizes (the plumbing)
# bench: 1. deployment speed: reference loop vs fast trainer, step-loss and 5-seed accuracy parity
#        2. dense-label throughput (crops/s) and the crop preview
#        3. where the fast step's GPU time goes (torch.profiler tables)
# study: a paper-protocol slice of the CIFAR-10 study (scripts/study.py --profile gpu; default
#        part 1 on random real: 1000 epochs, 5 seeds, width 128, labeler epoch 10 on all 50,000
#        images); STUDY_ARGS replaces the default slice.
# Every stage has its own time cap (a slow compile cannot eat the session) and writes its figures
# as it finishes: benchmark records to $OUT/benchmarks.json, study records to docs/results/
# (a session resumes from the records the checkout carries), all packed into $OUT/results.tgz.
# Needs python3 with torch, torchvision, safetensors, typer, rich, tqdm; CIFAR-10 as
# gpu-data/cifar10-jpg.tar.xz (git-ignored; name it in the device call's carry).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
OUT_DIR="${OUT:-gpu-out}"
mkdir -p "$OUT_DIR"
if [ -z "${LADD_SHARED_DATA:-}" ] && [ -f gpu-data/cifar10-jpg.tar.xz ]; then
  export LADD_SHARED_DATA=gpu-data
fi
export LADD_CACHE_DIR="${LADD_CACHE_DIR:-$PWD/.ladd-cache}"

log() { echo "[$(date -u +%FT%TZ)] $*" | tee -a "$OUT_DIR/session.log"; }
stage() {  # stage NAME CAP_SECONDS COMMAND...
  local name=$1 cap=$2
  shift 2
  log "start $name (cap ${cap}s): $*"
  timeout --kill-after=10 "$cap" "$@" 2>&1 | tee "$OUT_DIR/$name.txt"
  log "end $name rc=${PIPESTATUS[0]}"
}

STAGES="${STAGES:-bench study}"
if [ -n "${TINY:-}" ]; then
  bench=(--tiny --device "${DEVICE:-auto}")
  study=(--profile cpu --epochs 1 --seeds 2 --labeler-epochs 1 --labeler-limit 100
    --device "${DEVICE:-auto}")
  workspace="${STUDY_WORKSPACE:-$OUT_DIR/workspace}"  # never the real CPU study's workspace
  study_cap=600  # a CPU rehearsal: the plumbing, on two shared cores
  results="${STUDY_OUT:-$OUT_DIR/results}"             # nor its records
else
  workspace="${STUDY_WORKSPACE:-ladd-workspace}"
  results="${STUDY_OUT:-docs/results}"  # the records already there are skipped: sessions resume
  bench=()
  study=(--profile gpu --labeler-epochs 10)
  study_cap=190
fi
# shellcheck disable=SC2206  # STUDY_ARGS is a list of words on purpose
slice=(${STUDY_ARGS:---parts 1 --distillers random})

stage info 30 bash -c 'nvidia-smi || true; python3 -c "import torch; print(torch.__version__, \
torch.cuda.get_device_name() if torch.cuda.is_available() else \"no CUDA\")"'
if [[ " $STAGES " == *" bench "* ]]; then
  stage deploy_speed "${CAP_DEPLOY:-220}" python3 -u -m bench.deploy_speed "${bench[@]}" \
    --seeds 5 --parity-epochs "${PARITY_EPOCHS:-100}" --json-out "$OUT_DIR/benchmarks.json"
  stage dense_speed "${CAP_DENSE:-45}" python3 -u -m bench.dense_speed "${bench[@]}" \
    --forms eager-fp32 --json-out "$OUT_DIR/benchmarks.json"
  if [ -z "${TINY:-}" ]; then
    stage profile "${CAP_PROFILE:-40}" python3 -u -m bench.profile_step --epochs 3 --out "$OUT_DIR"
  fi
fi
if [[ " $STAGES " == *" study "* ]]; then
  mkdir -p "$results"
  stage study "${CAP_STUDY:-$study_cap}" python3 -u scripts/study.py "${study[@]}" "${slice[@]}" \
    --out "$results" --workspace "$workspace"
  # one file back: the device tool returns only a few (unpack into docs/results/ here)
  (cd "$results" && find . -maxdepth 1 -name '*.json' -print0 | sort -z |
    tar czf - --null -T -) > "$OUT_DIR/results.tgz"
  if [ "$results" = "$OUT_DIR/results" ]; then rm -rf "$results"; fi
fi
log "session done"
