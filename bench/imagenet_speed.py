"""ImageNet-1K at 224 px on a GPU (issue 27): torchvision's ResNet-18 trained by our engines
against a plain torchvision training loop on the same card, one epoch of an IPC 10 LADD run, and
DDP over every GPU of the machine. Prints one line per figure and appends JSON records.

    python -m bench.imagenet_speed --out imagenet.json                 # every stage, on CUDA
    python -m bench.imagenet_speed --tiny --device cpu --out x.json    # the CPU rehearsal

Stages (--stages, comma-separated):
  throughput  seed-samples/s of ResNet-18 under the rded protocol (AdamW, RDED's augmentation,
              LADD's crops cut per batch from uint8 images on the device, top-k labels decoded
              per batch; the fast trainer's choice of engine, bf16 on CUDA), and of a plain loop:
              torchvision.models.resnet18, AdamW, bf16 autocast, channels-last, batches of
              preloaded normalised images, no augmentation (an upper bound for any loop that
              also augments and cuts crops)
  epoch       the wall time of one epoch of Table 3's LADD run: 1000 classes x IPC 10, N = 5
              (260,000 samples), batch 100, the rded protocol; its figure x 300 epochs is the
              measured cost of a seed (recorded; the cost model's row is an estimate until then)
  ddp         the same training on every GPU through torchrun (--trainer ddp): samples/s at
              world size G against one process; with one GPU, one rank (the CUDA SyncBatchNorm
              path, its forwards counted, and the models saved with plain batch norm)
Sizes are the protocol's unless --tiny (8 classes, 32 px, a few hundred samples).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench.common import append_records, card_name, command_line, stamp, sync

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Sizes:
    classes: int
    ipc: int
    image: int
    n: int
    batch: int
    plain_steps: int

    @classmethod
    def of(cls, tiny: bool) -> Sizes:
        if tiny:
            return cls(classes=8, ipc=4, image=32, n=2, batch=16, plain_steps=3)
        return cls(classes=1000, ipc=10, image=224, n=5, batch=100, plain_steps=60)


def ladd_data(sizes: Sizes, *, images: int | None = None, seed: int = 0) -> Any:
    """A LADD training set of the protocol's shape: `images` uint8 images (default ipc x
    classes), the full images with hard labels, then every N x N crop with a top-k dense label
    (ladd.codecs.DEFAULT_CODEC), cut and decoded per batch (CroppedInputs,
    EncodedTargets)."""
    from ladd.codecs import DEFAULT_CODEC, EncodedDense, parse_codec
    from ladd.cropped import CroppedInputs
    from ladd.training import TrainingData

    m = images or sizes.classes * sizes.ipc
    k, crops = sizes.classes, sizes.n * sizes.n
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (m, 3, sizes.image, sizes.image), generator=g, dtype=torch.uint8)
    labels = torch.arange(m) % k
    codec = parse_codec(DEFAULT_CODEC)
    parts = []
    for start in range(0, m, 64):  # random soft labels, encoded a chunk at a time
        b = min(64, m - start)
        probs = torch.softmax(torch.randn(b, crops, k, generator=g) * 3, dim=-1)
        parts.append(EncodedDense.encode(codec, probs))
    dense = EncodedDense.concat(parts)
    head = torch.nn.functional.one_hot(labels, k).float()
    inputs = CroppedInputs(pixels, 1, 1, sizes.n, 0.625, IMAGENET_MEAN, IMAGENET_STD)
    return TrainingData(inputs, dense.targets(head), m, m * crops, k, m)


def _config(sizes: Sizes, epochs: int, trainer: str = "fast") -> Any:
    from ladd.training import TrainConfig

    return TrainConfig(
        arch="tv_resnet18",
        mode="ladd",
        epochs=epochs,
        batch_size=sizes.batch,
        seeds=(0,),
        protocol="rded",
        trainer=trainer,
        n=sizes.n,
        r=0.625,
    )


def ours(sizes: Sizes, device: torch.device, *, images: int | None = None) -> dict[str, Any]:
    """One epoch of our training on a LADD set; samples/s over the training seconds."""
    from ladd.plan import plan_training
    from ladd.trainers import train_models

    data = ladd_data(sizes, images=images)
    cfg = _config(sizes, epochs=1)
    plan = plan_training(data, cfg, device)
    t0 = time.perf_counter()
    res = train_models(data, plan)
    wall = time.perf_counter() - t0
    engine = getattr(res, "engine", None)
    return {
        "samples": len(data),
        "train_seconds": res.seconds,
        "wall_seconds": wall,
        "samples_per_s": len(data) / res.seconds,
        "engine": engine if isinstance(engine, (dict, str)) or engine is None else str(engine),
    }


def plain(sizes: Sizes, device: torch.device) -> dict[str, Any]:
    """A plain torchvision loop: resnet18, AdamW, bf16 autocast and channels-last on CUDA,
    batches drawn from preloaded normalised images, no augmentation; steady-state samples/s
    over sizes.plain_steps steps after 5 warm-up steps."""
    import torchvision

    k, b = sizes.classes, sizes.batch
    model = torchvision.models.resnet18(num_classes=k).to(device)
    cuda = device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    g = torch.Generator(device="cpu").manual_seed(0)
    pool = torch.randn(4 * b, 3, sizes.image, sizes.image, generator=g).to(device)
    if cuda:
        pool = pool.contiguous(memory_format=torch.channels_last)
    labels = (torch.arange(4 * b) % k).to(device)

    def step(i: int) -> None:
        sl = slice((i % 4) * b, (i % 4 + 1) * b)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = torch.nn.functional.cross_entropy(model(pool[sl]), labels[sl])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(5):
        step(i)
    sync(device)
    t0 = time.perf_counter()
    for i in range(sizes.plain_steps):
        step(i)
    sync(device)
    seconds = time.perf_counter() - t0
    return {"samples_per_s": sizes.plain_steps * b / seconds, "steps": sizes.plain_steps}


def ddp(sizes: Sizes, device: torch.device, tiny: bool) -> dict[str, Any] | None:
    """The throughput stage's training over every GPU (gloo CPU ranks when rehearsing). On a
    one-GPU machine it runs one rank: not a scaling figure, but the NCCL and SyncBatchNorm path
    on CUDA (its forwards are counted) and the engine's overhead against one process."""
    world = torch.cuda.device_count() if device.type == "cuda" else (2 if tiny else 0)
    if world < 1:
        return None
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={world}", "-m", "bench.imagenet_speed", "--worker",
        "--device", device.type, *(["--tiny"] if tiny else []),
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [".", os.environ.get("PYTHONPATH")])),
    }
    if device.type == "cpu":
        env["OMP_NUM_THREADS"] = "1"
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if run.returncode != 0:
        raise RuntimeError(f"torchrun failed ({run.returncode}): {run.stderr[-2000:]}")
    line = [x for x in run.stdout.splitlines() if x.startswith("{")][-1]
    return {"world": world, **json.loads(line)}


def _worker(sizes: Sizes, device: torch.device) -> None:
    """Under torchrun: one epoch with the ddp engine; rank 0 prints its figure as JSON."""
    from torch import nn

    from ladd.plan import plan_training
    from ladd.torchrun import finish_distributed, init_distributed, rank_device
    from ladd.trainers import train_models

    ranks = init_distributed(device)
    dev = rank_device(device)
    data = ladd_data(sizes, images=_throughput_images(sizes))
    cfg = _config(sizes, epochs=1, trainer="ddp")
    synced = [0]  # SyncBatchNorm forwards: the global batch's statistics (CUDA only)
    forward = nn.SyncBatchNorm.forward

    def counted(self, x):
        synced[0] += 1
        return forward(self, x)

    nn.SyncBatchNorm.forward = counted
    res = train_models(data, plan_training(data, cfg, dev))  # under torchrun: the ddp engine
    nn.SyncBatchNorm.forward = forward
    plain_saved = not any(isinstance(m, nn.SyncBatchNorm) for x in res.models for m in x.modules())
    if ranks.leader:
        print(
            json.dumps(
                {
                    "samples": len(data),
                    "samples_per_s": len(data) / res.seconds,
                    "sync_batchnorm_forwards": synced[0],
                    "saved_batchnorm_plain": plain_saved,
                }
            )
        )
        sys.stdout.flush()
    finish_distributed()


def _throughput_images(sizes: Sizes) -> int:
    """Images of the throughput runs: enough for a steady epoch, far from Table 3's 10,000."""
    return max(sizes.classes, min(sizes.classes * sizes.ipc, 2_000))


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--stages", default="throughput,epoch,ddp")
    p.add_argument("--tiny", action="store_true", help="rehearsal sizes (CPU)")
    p.add_argument("--out", type=Path, default=None, help="append JSON records here")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    device = torch.device(args.device)
    sizes = Sizes.of(args.tiny)
    if args.worker:
        _worker(sizes, device)
        return []
    command = command_line("bench.imagenet_speed", argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    records: list[dict[str, Any]] = []

    def keep(record: dict[str, Any]) -> None:
        record = stamp({"bench": "imagenet", **record, "tiny": args.tiny}, device, command)
        records.append(record)
        append_records(args.out, [record])
        print(json.dumps(record))

    print(f"# {card_name(device)}, torch {torch.__version__}, sizes {sizes}")
    if "throughput" in stages:
        images = _throughput_images(sizes)
        mine, theirs = ours(sizes, device, images=images), plain(sizes, device)
        keep({"stage": "throughput", "what": "ours", **mine})
        keep({"stage": "throughput", "what": "plain torchvision loop", **theirs})
        print(
            f"ResNet-18 {sizes.image} px: ours {mine['samples_per_s']:,.0f} samples/s, plain "
            f"loop {theirs['samples_per_s']:,.0f} ({mine['samples_per_s'] / theirs['samples_per_s']:.2f}x)"
        )
    if "epoch" in stages:
        one = ours(sizes, device)
        keep({"stage": "epoch", "what": "one epoch of the IPC 10 LADD run", **one})
        print(
            f"one epoch, {one['samples']:,} samples: {one['train_seconds']:.1f} s training "
            f"({one['wall_seconds']:.1f} s wall); x 300 epochs = "
            f"{one['train_seconds'] * 300 / 3600:.2f} h a seed"
        )
    if "ddp" in stages:
        got = ddp(sizes, device, args.tiny)
        if got is None:
            print("ddp: skipped (no GPU)")
        else:
            keep({"stage": "ddp", **got})
            print(
                f"ddp on {got['world']} rank(s): {got['samples_per_s']:,.0f} samples/s, "
                f"{got['sync_batchnorm_forwards']} SyncBatchNorm forwards, saved with plain "
                f"batch norm: {got['saved_batchnorm_plain']}"
            )
    return records


if __name__ == "__main__":
    main()
