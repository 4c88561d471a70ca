"""The distributed engine: one large training on many processes (torchrun), one model per seed.

    torchrun --nproc_per_node=G -m ladd train SET --trainer ddp ...

Each process (rank) holds the whole training set and runs ladd.trainers.loop's `fit` with this
engine: the same seeded shuffles and DSA draws on every rank (each seed's generator is seeded
alike everywhere), so all ranks walk the same global order of batches. A step splits the
global batch of B samples into G contiguous shards, one per rank; each rank runs its shard
through a DistributedDataParallel copy of the model, and DDP all-reduces (averages) the
gradients. The rank's loss is weighted by G * n_rank / B, so that the averaged gradient is the
gradient of the one-process batch mean, whatever the shard sizes (the last partial batch
included): each step's gradient is one process's up to float32 rounding of a sum taken in
another order. Those differences compound, so the weights drift apart as steps grow
(bench.ddp_drift measures it; the README gives the table); tests/trainers/test_distributed.py holds two
ranks to one process over a short run.

DSA is drawn for the whole batch on every rank from the seed's generator (one op per batch,
parameters per sample, as the reference loop) and each rank keeps its shard's rows, so the
augmentation stream is the one-process stream. Batch norm (torchvision's models) is
SyncBatchNorm over the ranks on CUDA, the global batch's statistics as one process has them,
and plain BatchNorm2d again in the trained model; on CPU ranks (gloo, where SyncBatchNorm does
not run) each rank normalises its shard, with a warning. The ConvNets (instance norm) are
exact.

Only rank 0 writes: its checkpoint saves (every rank reads the same file to resume), its
progress, and the run record above (ladd.pipeline). The process group is torch.distributed's
default one; `init_distributed` starts it from torchrun's environment.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ladd.device import ranks
from ladd.plan import TrainPlan
from ladd.torchrun import (
    rank_device,
)
from ladd.trainers.loop import TrainHooks, fit
from ladd.trainers.reference import ReferenceEngine, _OneSeed, train_reference
from ladd.training import TrainCheckpoint, TrainedModels, TrainingData, soft_cross_entropy

__all__ = ["DistributedEngine", "plain_batchnorm", "train_distributed"]


class DistributedEngine(ReferenceEngine):
    """One seed per group, its global batch sharded over the ranks (module doc)."""

    name = "ddp"

    def __init__(self, plan: TrainPlan, device: torch.device) -> None:
        super().__init__(plan, device)
        self.ranks = ranks()
        self.tag = f"on {self.ranks.world} ranks"

    def start(
        self, seeds: tuple[int, ...], gens: list[torch.Generator], data: TrainingData
    ) -> _Sharded:
        return _Sharded(self, seeds, gens[0], data)


def plain_batchnorm(model: nn.Module) -> nn.Module:
    """`model` with every SyncBatchNorm back as BatchNorm2d (the torchvision models' kind), same
    state: what a trained model is tested and saved as (SyncBatchNorm serves training over ranks
    only)."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.SyncBatchNorm):
            held = [*child.parameters(), *child.buffers()]
            bn = nn.BatchNorm2d(
                child.num_features, child.eps, child.momentum, child.affine,
                child.track_running_stats,
            )  # fmt: skip
            bn.load_state_dict(child.state_dict())
            bn = bn.to(held[0].device if held else "cpu").train(child.training)
            setattr(model, name, bn)
        else:
            plain_batchnorm(child)
    return model


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


class _Sharded(_OneSeed):
    def prepare(self, model: nn.Module, engine: ReferenceEngine) -> nn.Module:
        """Batch norm over the global batch, as one process computes it: SyncBatchNorm on CUDA
        (NCCL); on the CPU (gloo) SyncBatchNorm does not run, each rank normalises its shard
        and that is said once."""
        if not _has_batchnorm(model):
            return model
        if engine.device.type == "cuda":
            return nn.SyncBatchNorm.convert_sync_batchnorm(model)
        if ranks().leader:
            warnings.warn(
                "batch norm on CPU ranks normalises each rank's shard of a batch (SyncBatchNorm "
                "needs CUDA): the result differs from one process's",
                stacklevel=2,
            )
        return model

    def trained(self) -> list[nn.Module]:
        return [plain_batchnorm(m) for m in super().trained()]

    def __init__(
        self,
        engine: DistributedEngine,
        seeds: tuple[int, ...],
        g: torch.Generator,
        data: TrainingData,
    ) -> None:
        super().__init__(engine, seeds, g, data)
        self.ranks = engine.ranks
        ids = [engine.device.index] if engine.device.type == "cuda" else None
        # Every rank starts from init_model(spec, seed): the same weights; DDP checks and
        # broadcasts rank 0's anyway.
        self.ddp = DistributedDataParallel(self.model, device_ids=ids)

    def step(self, b: int, idx: torch.Tensor, n_real: int) -> torch.Tensor:
        i = idx[0]  # (B,): the seed's global batch, the same on every rank
        x, y = self.inputs[i], self.targets[i]
        x = self.augment(x)  # the whole batch: the one-process stream
        mine = self.ranks.shard(x.shape[0])
        xs, ys = x[mine], y[mine]
        n, total = xs.shape[0], x.shape[0]
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.ddp(xs)
        if n and self.objective is not None:
            # the shard's terms over its n samples, the learned weights' penalty at the global
            # batch's shares: scaled below, the ranks' average is the one-process loss
            soft = self.soft[i]
            local = self.objective(
                logits, ys, self.classes[i][mine], soft[mine], denominator=float(n), batch_soft=soft
            )
        elif n:
            local = soft_cross_entropy(logits, ys, temperature=self.temperature)
        else:  # more ranks than samples: a zero loss keeps this rank in the all-reduce
            local = logits.float().sum() * 0.0
            if self.objective is not None:  # its weights' gradients are all-reduced too
                local = local + sum(p.sum() * 0.0 for p in self.objective.parameters())
        scale = self.ranks.world * n / total * self.weight
        (local * scale).backward()  # DDP averages: the one-process batch-mean gradient
        if self.objective is not None:  # outside the DDP module: average their gradients here
            for p in self.objective.parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= self.ranks.world
        batch_sum = (local.detach() * n).view(1)
        dist.all_reduce(batch_sum)
        return batch_sum / total


class _ReadOnly(TrainCheckpoint):
    """A rank other than 0's view of the run's checkpoint: it resumes from the file rank 0
    writes and never writes it."""

    def __init__(self, inner: TrainCheckpoint) -> None:
        self.__dict__.update(inner.__dict__)

    def save(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        return None

    def remove(self) -> None:
        return None


def train_distributed(
    data: TrainingData, plan: TrainPlan, hooks: TrainHooks | None = None
) -> TrainedModels:
    """Train one model per seed of the plan on every rank of the job (module doc); on one
    process (no process group) it is the reference loop. Ranks other than 0 report no progress
    and write no checkpoint."""
    hooks = hooks or TrainHooks()
    here = ranks()
    if here.world == 1:
        return train_reference(data, plan, hooks)
    dev = rank_device(plan.device)
    if not here.leader:
        ckpt = hooks.checkpoint
        hooks = replace(
            hooks,
            progress=None,
            monitor=None,
            monitor_every=0,
            checkpoint=_ReadOnly(ckpt) if ckpt is not None else None,
        )
    return fit(DistributedEngine(plan, dev), data.to(dev), hooks)
