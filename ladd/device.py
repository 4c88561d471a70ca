"""Where this process runs: the torch device from a user's string, the precision that goes with
it, and its rank in a torchrun job (ladd.trainers.distributed starts the job)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """Map "auto" | "cpu" | "cuda" | "cuda:1" to a torch.device, with a clear error."""
    if isinstance(name, torch.device):
        return name
    name = name.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} asked for, but no CUDA GPU is available")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"unknown device {name!r}: use auto, cpu or cuda")


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """Resolve a precision: "auto" is "bf16" on CUDA (autocast, fp32 master weights) and "fp32"
    elsewhere; "fp32" and "bf16" are kept as asked ("bf16" only takes effect on CUDA)."""
    dev = torch.device(device) if isinstance(device, str) else device
    if precision == "auto":
        return "bf16" if dev.type == "cuda" else "fp32"
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"unknown precision {precision!r}; use auto, fp32 or bf16")
    return precision


@dataclass(frozen=True)
class Ranks:
    """This process's place in the job: rank of world (1 of 1 without torch.distributed)."""

    rank: int = 0
    world: int = 1

    @property
    def leader(self) -> bool:
        """Rank 0: the one process that records, saves and reports."""
        return self.rank == 0

    def shard(self, n: int) -> slice:
        """This rank's contiguous share of n items (the first n % world ranks take one more)."""
        base, extra = divmod(n, self.world)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (1 if self.rank < extra else 0))


def ranks() -> Ranks:
    """The current job's ranks (the default process group's), or one process."""
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size())
    return Ranks()
