"""The three steps tests/test_kill.py interrupts, as one function each (not a test module: no
test_ prefix). Run in the test's process, or as a child it kills with SIGKILL:

    python tests/kill_steps.py STEP ROOT SHARED AT

The child registers a forward pre-hook on every module: at the AT-th forward it prints "at AT"
and waits to be killed (a real SIGKILL at a known point of the step, no timing involved)."""

from __future__ import annotations

import sys
from pathlib import Path

STEPS = ("labeler", "augment", "train")


def run_step(step: str, root: Path, shared: Path) -> None:
    """One step of the pipeline on the workspace `root`, from the inputs in `shared` (a labeler
    checkpoint, a random-real set and its label-augmented file); resumes what it can."""
    import torch

    from ladd.store import Workspace

    torch.set_num_threads(1)
    ws = Workspace(root)
    if step == "labeler":
        from ladd.labeler import LabelerConfig
        from ladd.pipeline import run_labeler

        cfg = LabelerConfig(
            epochs=8, save_at=(4, 8), batch_size=16, limit_per_class=8, model_options={"width": 4}
        )
        run_labeler(ws, "shapes", cfg, out_dir=root / "lab", device="cpu", state_seconds=0.0)
    elif step == "augment":
        from ladd.pipeline import run_label_augment
        from ladd.sets import load_set

        ds = load_set(shared / "set")
        run_label_augment(
            ws, ds, shared / "lab" / "epoch_001.safetensors", n=4, out=root / "la.safetensors",
            device="cpu", force=True,
        )  # fmt: skip
    elif step == "train":
        from ladd.data import load_source
        from ladd.pipeline import run_train
        from ladd.plan import plan_training
        from ladd.sets import load_set
        from ladd.training import TrainConfig

        la = load_set(shared / "la.safetensors")
        test = load_source("shapes", "test", limit_per_class=3)
        cfg = TrainConfig(
            mode="ladd", epochs=6, seeds=(0, 1), batch_size=32, model_options={"width": 4}
        )
        run_train(ws, plan_training(la, cfg, "cpu"), la, test, checkpoint_seconds=0.0)
    else:
        raise ValueError(f"unknown step {step!r}; use one of {', '.join(STEPS)}")


def _child() -> None:
    import time

    import torch

    step, root, shared, at = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    seen = [0]

    def hold(module, args):
        seen[0] += 1
        if seen[0] == at:
            print(f"at {at}", flush=True)
            time.sleep(600)  # the parent kills this process now

    torch.nn.modules.module.register_module_forward_pre_hook(hold)
    run_step(step, root, shared)
    print("finished", flush=True)


if __name__ == "__main__":
    _child()
