#!/usr/bin/env bash
# The CIFAR-10 study on a GPU, resumable: every finished run group is a JSON record under
# docs/results/, and a rerun skips those. Needs python3 with torch, torchvision, safetensors.
#   bash scripts/study_gpu.sh [PARTS [STUDY.PY OPTIONS]]   # PARTS e.g. "1" or "1,2,3,4,5,6"
#   bash scripts/study_gpu.sh 6 --distiller random          # cross-architecture on random real
# CIFAR-10: LADD_SHARED_DATA (a folder with cifar10-jpg.tar.xz), else gpu-data/ in the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
if [ -z "${LADD_SHARED_DATA:-}" ] && [ -f gpu-data/cifar10-jpg.tar.xz ]; then
  export LADD_SHARED_DATA=gpu-data
fi
python3 scripts/study.py --profile gpu --parts "${1:-1,2,3,4,5,6}" "${@:2}"
python3 scripts/make_results.py
if [ -n "${OUT:-}" ]; then tar czf "$OUT/results.tgz" docs/results docs/results.md; fi  # one file back
