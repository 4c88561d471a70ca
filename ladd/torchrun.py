"""A torchrun job's process side, for a front end and the engines alike: whether this process
is one of torchrun's ranks, the process group started and ended, each rank's device, and
`--gpus G` as torchrun launching the command line again on this machine. Not a training layer:
the command line joins or launches a job here before it plans, and ladd.trainers.distributed
trains over the ranks it finds.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import NoReturn

import torch
import torch.distributed as dist

from ladd.device import Ranks, ranks, resolve_device

__all__ = [
    "TORCHRUN_CLASHES",
    "end_distributed_job",
    "finish_distributed",
    "init_distributed",
    "join_torchrun_job",
    "launch_local_ranks",
    "launched_by_torchrun",
    "rank_device",
    "torchrun_command",
]


def launched_by_torchrun() -> bool:
    """Whether this process was started by torchrun (or any launcher that sets its variables)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


# ladd options that torchrun's argument parser reads as abbreviations of its own (--n: --nnodes,
# --nproc-per-node, ...; --r: --redirects, --rdzv-*, ...) even after the script's name: their
# long spellings, which it leaves alone.
TORCHRUN_CLASHES = {"--n": "--crops-per-side", "--r": "--crop-ratio"}


def torchrun_command(processes: int, argv: list[str], *, option: str = "--gpus") -> list[str]:
    """The command that runs `python -m ladd <argv>` as `processes` ranks on this machine:
    torchrun (torch.distributed.run) --standalone --nproc_per_node=G -m ladd ..., with `option`
    and its value taken out of argv (the ranks must not launch again) and the options torchrun
    would misread given their long spellings (TORCHRUN_CLASHES). Several machines: run
    torchrun yourself with its rendezvous flags (README, "Many GPUs")."""
    if processes < 2:
        raise ValueError(f"torchrun is for 2 or more processes, not {processes}")
    rest: list[str] = []
    skip = False
    for arg in argv:
        flag, eq, value = arg.partition("=")
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif flag == option and eq:
            continue
        elif flag in TORCHRUN_CLASHES:  # torchrun's parser would take it for one of its own
            rest.append(TORCHRUN_CLASHES[flag] + eq + value)
        else:
            rest.append(arg)
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={processes}",
        "-m",
        "ladd",
        *rest,
    ]


def init_distributed(device: str | torch.device = "auto", timeout_s: float = 600.0) -> Ranks:
    """Start the default process group from torchrun's environment (RANK, WORLD_SIZE,
    MASTER_ADDR, MASTER_PORT, LOCAL_RANK): NCCL on CUDA (each rank on cuda:LOCAL_RANK), gloo on
    the CPU. A no-op when the group is up already or the process is not one of several. A rank
    that dies makes the others' next collective fail within `timeout_s`."""
    if not launched_by_torchrun() or (dist.is_available() and dist.is_initialized()):
        return ranks()
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    backend = "nccl" if dev.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return ranks()


def finish_distributed() -> None:
    """End the job's process group cleanly: wait for every rank (rank 0 may still be writing),
    then destroy the group. A process that exits with the group up can abort in gloo's
    threads ("terminate called without an active exception")."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def rank_device(device: str | torch.device) -> torch.device:
    """This rank's device: cuda:LOCAL_RANK for a CUDA job, else as asked."""
    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return dev


def join_torchrun_job(device: str | torch.device = "auto") -> tuple[Ranks, torch.device] | None:
    """In a torchrun job of several ranks: the process group started (init_distributed) and
    (this process's place, its device: rank_device); in a process of its own, None."""
    if not launched_by_torchrun():
        return None
    return init_distributed(device), rank_device(device)


def end_distributed_job(code: int = 0) -> NoReturn:
    """Leave a torchrun job whose work is done and written: every rank waits for the others
    and ends the process group (finish_distributed), then the process exits at once with
    `code`, its output flushed, without the interpreter's teardown, in which gloo's threads can
    abort a rank ("terminate called without an active exception")."""
    finish_distributed()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def launch_local_ranks(
    processes: int,
    argv: list[str],
    device: str | torch.device = "auto",
    *,
    option: str = "--gpus",
    announce: Callable[[list[str]], None] | None = None,
) -> int:
    """Run the command line `ladd <argv>` again as `processes` ranks on this machine (one per
    CUDA GPU, or gloo processes on the CPU) through torchrun_command, and wait for them; their
    exit code. `announce` is shown the command first. ValueError when this process is a rank
    already, the machine has fewer GPUs, or the device is neither CUDA nor the CPU."""
    import subprocess

    if launched_by_torchrun():
        raise ValueError(f"{option} inside a torchrun job: torchrun starts the ranks already")
    dev = resolve_device(device)
    if dev.type == "cuda" and processes > torch.cuda.device_count():
        raise ValueError(
            f"{option} {processes}: this machine has {torch.cuda.device_count()} CUDA GPU(s)"
        )
    if dev.type not in ("cuda", "cpu"):
        raise ValueError(f"{option} runs on CUDA GPUs or CPU processes, not {dev.type}")
    cmd = torchrun_command(processes, argv, option=option)
    if announce is not None:
        announce(cmd)
    return subprocess.run(cmd, check=False).returncode
