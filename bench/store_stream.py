"""A 1000-class soft-label store streams through training: peak memory against the store's size.

    python -m bench.store_stream                       # 1000 classes x IPC 10, 16 px, 4 epochs
    python -m bench.store_stream --store-epochs 4,32   # the stores the same training reads

Writes (in a temporary folder) an image folder of 1000 classes and SRe2L-layout stores over it
(the same torch.save'd lists SRe2L's relabel writes: fp16 logits of 1000 classes, numpy.int64
CutMix boxes; VILA-Lab/SRe2L relabel/generate_soft_label.py:222-224), one with few epochs and
one with many, plus the large one converted by `ladd convert` (our memory-mapped layout). Each
training runs in a fresh process: the same `--epochs` of label mode "store" on each store, and
for reference the same images trained with hard labels and no store. It reports the resident set
once the images are read ("RSS before"), the largest resident set sampled every 20 ms while it
plans and trains ("training"), and the process's peak (resource.getrusage's ru_maxrss). A store that is read batch by batch costs the same peak memory
whatever its size on disk. Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time, torch
torch.set_num_threads(2)
from ladd.plan import plan_training
from ladd.sets import load_set
from ladd.trainers import train_models
from ladd.training import TrainConfig, build_training_data
images, store, epochs, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ds = load_set(images, mean=(0.5,) * 3, std=(0.25,) * 3)
cfg = TrainConfig(arch="convnet_d3", epochs=epochs, seeds=(0,), batch_size=batch, protocol="rded",
                  precision="fp32", model_options={"width": 8}, dsa=False,
                  mode="baseline" if store == "none" else "store")
if store != "none":
    from ladd.stores.pairing import open_soft_label_set
    ds = open_soft_label_set(images, store, dataset=ds)
import threading
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS"))
before, top, stop = rss(), [0], threading.Event()
def sample():  # the resident set while training, every 20 ms
    while not stop.is_set():
        top[0] = max(top[0], rss())
        stop.wait(0.02)
watch = threading.Thread(target=sample, daemon=True)
watch.start()
t0 = time.perf_counter()
plan = plan_training(ds, cfg, "cpu")
data = build_training_data(ds, cfg.mode)
out = train_models(data, plan)
stop.set(); watch.join()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"peak_rss": peak, "rss_before": before, "training_peak": top[0],
                  "seconds": time.perf_counter() - t0, "samples": len(data) * epochs,
                  "loss": out.loss_curves[0][-1]}))
"""


def write_images(root: Path, classes: int, ipc: int, size: int) -> None:
    import torch
    from PIL import Image

    for c in range(classes):
        folder = root / f"{c:05d}"
        folder.mkdir(parents=True)
        for i in range(ipc):
            g = torch.Generator().manual_seed(c * ipc + i)
            px = torch.randint(0, 256, (size, size, 3), generator=g, dtype=torch.uint8)
            Image.fromarray(px.numpy()).save(folder / f"class{c:05d}_id{i:05d}.png")


def write_sre2l_store(root: Path, images: int, classes: int, epochs: int, batch: int, size: int):
    """SRe2L's relabel output over `images` images (no teacher: random logits)."""
    import numpy as np
    import torch

    g = torch.Generator()
    g.manual_seed(42)  # --fkd-seed: the order SRe2L's loaders rebuild
    sampler = torch.utils.data.RandomSampler(range(images), generator=g)
    rng = np.random.default_rng(0)
    for e in range(epochs):
        order = list(sampler)
        folder = root / f"epoch_{e}"
        folder.mkdir(parents=True)
        for b in range(0, images, batch):
            n = len(order[b : b + batch])
            hw = torch.randint(1, size + 1, (n, 2)) / size
            coords = torch.cat([torch.rand(n, 2) * (1 - hw), hw], dim=1).float()
            flip = torch.rand(n) < 0.5
            lam = float(rng.beta(1.0, 1.0))
            x1, y1 = (int(v) for v in rng.integers(0, size // 2, 2))
            box = [np.int64(x1), np.int64(y1), np.int64(x1 + size // 2), np.int64(y1 + size // 2)]
            logits = (torch.randn(n, classes) * 3).half()
            torch.save(
                [coords, flip, torch.randperm(n), lam, box, logits],
                folder / f"batch_{b // batch}.tar",
            )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--ipc", type=int, default=10)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=4, help="epochs trained on every store")
    ap.add_argument("--store-epochs", default="4,32", help="the stores' epochs, small,large")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    small, large = (int(v) for v in args.store_epochs.split(","))
    images = args.classes * args.ipc
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        write_images(root / "imgs", args.classes, args.ipc, args.size)
        for e in (small, large):
            write_sre2l_store(root / f"store{e}", images, args.classes, e, args.batch, args.size)
        from ladd.stores import convert_store, open_store

        convert_store(open_store(root / f"store{large}"), root / f"store{large}.safetensors")
        print(f"fixtures written in {time.perf_counter() - t0:.0f} s")
        cases = [
            ("no store (hard labels)", "none"),
            (f"FKD folder, {small} epochs", str(root / f"store{small}")),
            (f"FKD folder, {large} epochs", str(root / f"store{large}")),
            (f"converted, {large} epochs", str(root / f"store{large}.safetensors")),
        ]
        print(
            f"{args.classes} classes x IPC {args.ipc} = {images:,} images of {args.size} px; "
            f"{args.epochs} epochs of ConvNet-D3 (width 8), batch {args.batch}, CPU"
        )
        print(
            f"{'store':<28} {'on disk':>10} {'labels':>10} {'RSS before':>11} "
            f"{'training':>10} {'peak RSS':>10} {'seconds':>8}"
        )
        for name, store in cases:
            disk = labels = 0
            if store != "none":
                info = open_store(store).info()
                disk, labels = info.bytes, info.label_bytes
            proc = subprocess.run(
                [sys.executable, "-c", CHILD, str(root / "imgs"), store, str(args.epochs),
                 str(args.batch)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            got = json.loads(proc.stdout.strip().splitlines()[-1])
            row = {"store": name, "disk_bytes": disk, "label_bytes": labels, **got}
            rows.append(row)
            print(
                f"{name:<28} {disk / 2**20:>8.0f} MB {labels / 2**20:>8.0f} MB "
                f"{got['rss_before'] / 2**20:>8.0f} MB {got['training_peak'] / 2**20:>7.0f} MB "
                f"{got['peak_rss'] / 2**20:>7.0f} MB {got['seconds']:>8.0f}"
            )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
