#!/usr/bin/env bash
# Issue #18: the CIFAR-10 study at the paper's protocol with the real distillers, in pieces that
# fit lent GPU sessions. Every run group is a JSON record under docs/results/ (the study
# resumes from them), DM/MTT sets, experts and labelers are kept in the workspace between
# pieces only when the workspace travels: carry it (e.g. carry ["gpu-data", "ladd-workspace"]).
#
#   STAGE=dm   bash scripts/study_gpu_full.sh   # DM, 20,000 iterations, IPC 1 and 10 (part 1)
#   STAGE=mtt  bash scripts/study_gpu_full.sh   # experts (10 x 50 epochs, ZCA) + MTT IPC 1, 10
#   STAGE=p6   bash scripts/study_gpu_full.sh   # part 6 on the MTT set: all five architectures
#   STAGE=p34  bash scripts/study_gpu_full.sh   # parts 3 and 4 at protocol size
#   STAGE=p25  bash scripts/study_gpu_full.sh   # parts 2 and 5
#   STAGE=p8   bash scripts/study_gpu_full.sh   # part 8: label strategies, samplers, stored
#                                               # crops at equal bytes (random real + MTT)
# Extra study.py options go in STUDY_ARGS (e.g. "--executor ray" on a multi-GPU server).
# TINY=1 rehearses a stage on the CPU at smoke sizes (scripts' plumbing only).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
if [ -z "${LADD_SHARED_DATA:-}" ] && [ -f gpu-data/cifar10-jpg.tar.xz ]; then
  export LADD_SHARED_DATA=gpu-data
fi
OUT_DIR="${OUT:-/tmp/ladd-study-out}"
mkdir -p "$OUT_DIR"
# shellcheck disable=SC2206
extra=(${STUDY_ARGS:-})
if [ -n "${TINY:-}" ]; then
  base=(--profile cpu --epochs 2 --seeds 2 --labeler-epochs 1 --labeler-limit 50 --width 8
        --dm-iterations 3 --mtt-iterations 2 --num-experts 2 --expert-epochs 3 --device cpu)
  results="${STUDY_OUT:-$OUT_DIR/results}"
  workspace="${STUDY_WORKSPACE:-$OUT_DIR/workspace}"
else
  base=(--profile gpu --labeler-epochs 10)
  results="${STUDY_OUT:-docs/results}"
  workspace="${STUDY_WORKSPACE:-ladd-workspace}"
fi
run() { python3 -u scripts/study.py "${base[@]}" "$@" "${extra[@]}" --out "$results" \
          --workspace "$workspace" 2>&1 | tee -a "$OUT_DIR/study.txt"; }
case "${STAGE:?set STAGE to dm, mtt, p6, p34, p25 or p8}" in
  dm)  run --parts 1 --distillers dm ;;
  mtt) run --parts 1 --distillers mtt ;;
  p6)  run --parts 6 --distiller mtt ;;
  p34) run --parts 3,4 --distiller mtt ;;
  p25) run --parts 2,5 --distiller mtt ;;
  p8)  run --parts 8 --distiller mtt ;;
  *) echo "unknown STAGE $STAGE" >&2; exit 2 ;;
esac
if [ "$results" = docs/results ]; then python3 scripts/make_results.py; fi
(cd "$results" && find . -maxdepth 1 -name '*.json' -print0 | sort -z | tar czf - --null -T -) \
  > "$OUT_DIR/results.tgz"  # one file back from the device tool
