"""Peak memory of label augmentation + the training data path, per label codec (issue 26).

    python -m bench.codec_memory                 # 1000 classes, 1000 images of 8 px, N = 5
    python -m bench.codec_memory --images 200    # smaller

Each codec runs in a fresh process (peak RSS is per process, resource.getrusage's ru_maxrss):
augment a synthetic 1000-class set with an untrained ConvNet-D3 labeler, then build the LADD
training data (full images + every crop). float32 holds the [M, N*N, K] float tensor twice
(the labels, then the flat targets); a compact codec keeps only its payload (EncodedTargets).
The baseline row (no augmentation) is the process with the images and crops alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, torch
torch.set_num_threads(2)
from ladd.dense import augment
from ladd.labeler import Labeler, LabelerMeta
from ladd.models import create_model
from ladd.sets import DistilledSet
from ladd.training import build_training_data
codec, m, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
g = torch.Generator().manual_seed(0)
names = tuple(f"c{i}" for i in range(1000))
ds = DistilledSet(images=torch.randn(m, 3, size, size, generator=g), labels=torch.arange(m) % 1000,
                  soft_labels=None, lr=None, mean=(0.5,) * 3, std=(0.25,) * 3, class_names=names,
                  format="tensor", source=None)
torch.manual_seed(0)
model = create_model("convnet_d3", 1000, size, width=8).eval()
meta = LabelerMeta(arch="convnet_d3", spec=model.spec.to_dict(), source="synthetic", epoch=1,
                   mean=ds.mean, std=ds.std, class_names=names, seed=0, test_accuracy=0.0,
                   image_size=size)
if codec == "none":
    data = build_training_data(ds, "crops_hard")
    label_bytes = 0
else:
    la = augment(ds, Labeler(model, meta), n=5, r=0.625, device="cpu", codec=codec)
    data = build_training_data(la, "ladd")
    label_bytes = la.label_bytes()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"codec": codec, "peak_rss": peak, "label_bytes": label_bytes,
                  "targets": type(data.targets).__name__}))
"""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--size", type=int, default=8)
    ap.add_argument(
        "--codecs",
        default="none;float32;float16;int8:affine;topk:5,uint8;topk:1,uint8",
        help="codec specs separated by ';' (none: no dense labels, the crops alone)",
    )
    args = ap.parse_args(argv)
    specs = [s.strip() for s in args.codecs.split(";") if s.strip()]
    print(f"{args.images} images of {args.size} px, 1000 classes, N = 5 (25 crops each)")
    print(f"{'codec':<22} {'peak RSS':>10} {'label bytes':>12}  targets")
    for spec in specs:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, spec, str(args.images), str(args.size)],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"{row['codec']:<22} {row['peak_rss'] / 2**20:>8.0f} MB "
            f"{row['label_bytes'] / 2**20:>10.1f} MB  {row['targets']}"
        )


if __name__ == "__main__":
    main()
