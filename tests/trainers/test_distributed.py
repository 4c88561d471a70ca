"""ladd.trainers.distributed: one training on several processes (torchrun, gloo on the CPU)
trains the weights one process trains, only rank 0 writes, and a dead rank's job resumes.

The torchrun jobs are few and shared (each costs two fresh interpreters): `ddp_job` launches a
job whose rank 1 dies, then ONE job (tests/trainers/ddp_worker.py --all) that resumes it,
trains the same plan afresh, shards an evaluation and runs `ladd augment`; the tests below
check its outputs. `ladd train --gpus 2` launches its own (the launcher is what it tests).
The one-process references and the inputs are made in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from plans import plan
from safetensors.torch import load_file

from ladd.device import Ranks, ranks
from ladd.trainers import TrainHooks
from ladd.trainers.distributed import train_distributed
from ladd.trainers.reference import train_reference

sys.path.insert(0, str(Path(__file__).parent))
from ddp_worker import job_config, job_data  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).parent / "ddp_worker.py"
# Each rank sums its shard's gradients and gloo adds the ranks' sums: the same terms as one
# process's batch sum, added in another order. float32 rounding of that order (~1e-7 relative
# per step) compounds over the 20 SGD steps a seed with momentum (4 passes of 5 batches); 1e-4
# leaves room for other BLAS paths and still fails on any real difference (a wrong shard
# weight moves the weights by ~1e-2, a shard's DSA drawn apart by more). The drift grows with
# the steps: python -m bench.ddp_drift measures it (README, "One training on many processes").
TOL = 1e-4
ENV = {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _torchrun(out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **ENV}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    return subprocess.run(
        [*cmd, str(WORKER), str(out), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A random-real `shapes` set (IPC 3) and a one-epoch labeler, for `ladd augment`."""
    from ladd.labeler import LabelerConfig, train_labeler
    from ladd.sets import random_real

    root = tmp_path_factory.mktemp("ddp-inputs")
    random_real("shapes", 3, seed=0).save_mtt(root / "set")
    cfg = LabelerConfig(epochs=1, save_at=(1,), limit_per_class=10, model_options={"width": 8})
    (path,) = train_labeler("shapes", cfg, root / "labeler", device="cpu")
    (root / "labeler.safetensors").write_bytes(Path(path).read_bytes())
    return root


@pytest.fixture(scope="module")
def ddp_job(tmp_path_factory, inputs) -> dict:
    """The killed job, then the shared one (module doc); their exit codes and stderr."""
    out = tmp_path_factory.mktemp("ddp")
    killed = _torchrun(out, "--kill-at", "6")  # rank 1 dies in seed 1's passes
    state_left = (out / "killed" / "ckpt.safetensors").is_file()
    weights_left = (out / "killed" / "weights.safetensors").exists()
    shared = _torchrun(out, "--all", str(inputs))
    return {
        "out": out, "killed": killed, "shared": shared, "state_left": state_left,
        "weights_left": weights_left,
    }  # fmt: skip


def _ok(job: dict) -> Path:
    run = job["shared"]
    assert run.returncode == 0, run.stderr[-3000:]
    return job["out"]


@pytest.fixture(scope="module")
def reference_weights() -> dict[str, torch.Tensor]:
    data = job_data()
    ref = train_reference(data, plan(data, job_config()))
    return {
        f"seed{s}.{k}": v
        for s, m in zip(job_config().seeds, ref.models, strict=True)
        for k, v in m.state_dict().items()
    }


def _assert_close(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert got.keys() == want.keys()
    worst = max(float((got[k] - want[k]).abs().max()) for k in want)
    assert worst < TOL, worst
    moved = max(float((want[k] - _init(k)).abs().max()) for k in want if "weight" in k)
    assert moved > 100 * TOL  # the models trained: the tolerance is far below what moved


def _init(key: str) -> torch.Tensor:
    from ladd.training import init_model

    data = job_data()
    seed, name = key.split(".", 1)
    model = init_model(plan(data, job_config()).spec, int(seed[len("seed") :]))
    return model.state_dict()[name]


def test_shards_cover_the_batch_once_in_order():
    for n in (0, 1, 5, 63, 64):
        for world in (1, 2, 3):
            cuts = [Ranks(r, world).shard(n) for r in range(world)]
            got = [i for c in cuts for i in range(n)[c]]
            assert got == list(range(n))
            sizes = [c.stop - c.start for c in cuts]
            assert max(sizes) - min(sizes) <= 1
    assert ranks() == Ranks(0, 1) and Ranks().leader and not Ranks(1, 2).leader


def test_one_process_is_the_reference_loop(reference_weights):
    data = job_data()
    p = plan(data, job_config("ddp"), None)
    assert p.engine == "ddp"  # trainer ddp: planned as ddp, one process runs the reference loop
    one = train_distributed(data, p)
    got = {
        f"seed{s}.{k}": v
        for s, m in zip(p.config.seeds, one.models, strict=True)
        for k, v in m.state_dict().items()
    }
    assert got.keys() == reference_weights.keys()
    assert all(torch.equal(got[k], reference_weights[k]) for k in got)


def test_two_ranks_train_the_one_process_weights(ddp_job, reference_weights):
    """Global batch 63 over 2 gloo ranks (shards of 32 and 31; the last batch of 48: 24 and
    24), 3 passes x 2 seeds with DSA, planned under torchrun (the plan's engine is ddp): the
    weights of ladd.trainers.reference's one process (which the parity tests tie to MTT/DATM
    utils.evaluate_synset), to TOL."""
    out = _ok(ddp_job) / "fresh"
    assert (out / "engine.txt").read_text() == "ddp"
    _assert_close(load_file(str(out / "weights.safetensors")), reference_weights)


def test_a_dead_rank_fails_the_job_and_the_rerun_resumes_to_the_same_weights(
    ddp_job, reference_weights
):
    assert ddp_job["killed"].returncode != 0
    assert not ddp_job["weights_left"]
    assert ddp_job["state_left"]  # rank 0 saved at every pass boundary
    out = _ok(ddp_job) / "killed"
    # the rerun went on from rank 0's last save, after seed 1's first pass (4 passes a seed)
    engine, _, group, _, done = (out / "resumed.txt").read_text().split()
    assert engine == "ddp" and int(group) == 1 and int(done) >= 1
    _assert_close(load_file(str(out / "weights.safetensors")), reference_weights)


def test_evaluation_is_sharded_over_the_ranks_with_the_one_process_scores(ddp_job):
    """ladd.deploy.evaluate_sharded on 2 gloo ranks: each rank predicts its half of the split
    (51 and 50 of 101 images), the summed counts give every rank the whole split's scores,
    equal to one process's to the bit (counts add exactly)."""
    out = _ok(ddp_job)
    outs = [json.loads((out / f"eval.{r}.json").read_text()) for r in (0, 1)]
    assert [o["seen"] for o in outs] == [[51], [50]]
    assert all(o["same"] == [True, True] for o in outs)


def test_ladd_augment_under_torchrun_labels_shards_and_writes_one_file(ddp_job, inputs, tmp_path):
    """`torchrun --nproc_per_node=2 ... ladd augment ...` (the shared job's last step): each
    rank labels its half of the images, rank 0 joins them and alone writes and records the
    file; its labels are one process's (float32 codec: to 1e-6, the ranks' batches differ in
    size only)."""
    from typer.testing import CliRunner

    from ladd.cli import app
    from ladd.store import Workspace

    out = _ok(ddp_job)
    res = CliRunner().invoke(
        app,
        [
            "augment", str(inputs / "set"), "--labeler", str(inputs / "labeler.safetensors"),
            "--source", "shapes", "--crops-per-side", "3", "--codec", "float32",
            "--workspace", str(inputs / "ws"), "--device", "cpu",
            "--out", str(tmp_path / "one.safetensors"),
        ],
        catch_exceptions=False,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    two, one = load_file(out / "two.safetensors"), load_file(tmp_path / "one.safetensors")
    assert two.keys() == one.keys() and two["dense"].shape == (30, 9, 10)
    assert torch.equal(two["images"], one["images"]) and torch.equal(two["labels"], one["labels"])
    torch.testing.assert_close(two["dense"], one["dense"], rtol=0, atol=1e-6)
    torch.testing.assert_close(two["full_soft"], one["full_soft"], rtol=0, atol=1e-6)
    runs = [r for r in Workspace(inputs / "ws").db.list_runs("augment") if r.status == "done"]
    assert len(runs) == 2  # one for the torchrun job (rank 0), one for the single process


def test_a_run_that_blows_up_on_two_ranks_is_recorded_failed(ddp_job, inputs):
    """lr 1e30 on the ddp engine (the shared job's step 3b): both ranks end with the
    non-finite error and rank 0 records the run failed, with no weights."""
    from ladd.store import Workspace

    out = _ok(ddp_job)
    ends = [(out / f"nonfinite.{r}.txt").read_text().split() for r in (0, 1)]
    assert all(e[0] == "ddp" and e[1] in ("NonFiniteLoss", "NonFiniteWeights") for e in ends)
    (run,) = Workspace(inputs / "ws-nonfinite").db.list_runs("train")
    assert run.status == "failed" and run.error.startswith(ends[0][1])
    assert not [k for k in run.artifacts if k.startswith("model_seed")]


@pytest.mark.parametrize("rank", [0, 1])
def test_only_rank_zero_reports_progress(monkeypatch, rank):
    """Ranks other than 0 hand the loop no progress hook and a checkpoint that never writes."""
    from ladd.trainers import distributed
    from ladd.training import TrainCheckpoint

    seen = {}

    def fake_fit(engine, data, hooks):
        seen["hooks"] = hooks
        return "trained"

    monkeypatch.setattr(distributed, "ranks", lambda: Ranks(rank, 2))
    monkeypatch.setattr(distributed, "fit", fake_fit)
    monkeypatch.setattr(distributed, "DistributedEngine", lambda *a: None)
    ckpt = TrainCheckpoint(Path("/nonexistent/ckpt.safetensors"), "k")
    data = job_data()
    hooks = TrainHooks(progress=print, checkpoint=ckpt)
    out = train_distributed(data, plan(data, job_config(), "ddp"), hooks)
    hooks = seen["hooks"]
    assert out == "trained"
    if rank == 0:
        assert hooks.progress is print and hooks.checkpoint is ckpt
    else:
        assert hooks.progress is None and hooks.checkpoint is not ckpt
        hooks.checkpoint.save({}, {})  # a no-op: the folder does not even exist
        assert hooks.checkpoint.path == ckpt.path


def test_ladd_train_gpus_2_records_one_run_with_the_one_process_result(tmp_path, monkeypatch):
    """`ladd train ... --gpus 2` launches `torchrun --standalone --nproc_per_node=2 -m ladd
    train ...` (the command line's torchrun path): rank 0 alone records (one run in the
    database, planned on the ddp engine), and its models score what one process's reference
    loop scores. The launcher runs in this process (as `ladd` would, its argv set); the ranks
    are the one torchrun job of this test."""
    from typer.testing import CliRunner

    from ladd.cli import app
    from ladd.distill import RandomConfig
    from ladd.pipeline import run_distill
    from ladd.store import Workspace

    ws = tmp_path / "ws"
    set_dir = run_distill(Workspace(ws), "shapes", "random", RandomConfig(ipc=3)).path
    train = [
        "train", str(set_dir), "--source", "shapes", "--mode", "baseline", "--epochs", "3",
        "--seeds", "2", "--width", "8", "--batch-size", "7", "--device", "cpu",
        "--workspace", str(ws),
    ]  # fmt: skip
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(sys, "argv", ["ladd", *train, "--gpus", "2"])
    runner = CliRunner()
    run = runner.invoke(app, [*train, "--gpus", "2"], catch_exceptions=False)
    assert run.exit_code == 0, run.output
    said = run.output + run.stderr
    assert "launching 2 ranks: torchrun --standalone --nproc_per_node=2 -m ladd" in said
    monkeypatch.setattr(sys, "argv", ["ladd", *train, "--trainer", "reference"])
    one = runner.invoke(app, [*train, "--trainer", "reference"], catch_exceptions=False)
    assert one.exit_code == 0, one.output
    runs = [r for r in Workspace(ws).db.list_runs("train") if r.status == "done"]
    assert sorted(r.config["plan"]["engine"] for r in runs) == ["ddp", "reference"]
    ddp, ref = sorted(runs, key=lambda r: r.config["plan"]["engine"])
    assert ddp.metrics["per_seed"] == pytest.approx(ref.metrics["per_seed"], abs=1e-9)


def test_torchrun_command_drops_the_launch_option():
    from ladd.torchrun import torchrun_command

    cmd = torchrun_command(
        4, ["train", "set", "--gpus", "4", "--epochs", "3", "--gpus=4", "--n", "5", "--r=0.5"]
    )
    assert cmd[1:] == [
        "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4",
        "-m", "ladd", "train", "set", "--epochs", "3", "--crops-per-side", "5",
        "--crop-ratio=0.5",
    ]  # fmt: skip
    assert cmd[0] == sys.executable
    with pytest.raises(ValueError, match="2 or more"):
        torchrun_command(1, ["train"])


def test_no_ladd_option_is_taken_by_torchruns_parser():
    """torchrun's argument parser reads abbreviations of its own options anywhere on the line,
    after the script's name too (`--n` for --nnodes ...): every option of every ladd command,
    in the spelling ladd.torchrun.torchrun_command passes, reaches ladd."""
    import click
    import typer
    from torch.distributed.run import get_args_parser

    from ladd.cli import app
    from ladd.torchrun import TORCHRUN_CLASHES

    parser = get_args_parser()
    root = typer.main.get_command(app)
    names: set[str] = set()

    def walk(cmd: click.Command) -> None:
        for p in cmd.params:
            names.update(o for o in p.opts + p.secondary_opts if o.startswith("--"))
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)

    walk(root)
    assert {"--n", "--r", "--epochs", "--crops-per-side"} <= names
    for name in sorted(names):
        spelled = TORCHRUN_CLASHES.get(name, name)
        args = parser.parse_args(["--standalone", "--nproc_per_node=2", "-m", "ladd", spelled, "1"])
        assert args.training_script_args == [spelled, "1"], name


def test_batch_norm_models_sync_on_cuda_and_say_so_on_cpu_ranks():
    """Under DDP a torchvision model's batch norm is SyncBatchNorm on CUDA (the global batch's
    statistics, as one process), turned back into BatchNorm2d for testing and saving with the
    same state; on CPU ranks (gloo: SyncBatchNorm needs CUDA) each shard is normalised alone,
    and a warning says so."""
    import types

    from torch import nn

    from ladd.models import create_model
    from ladd.trainers.distributed import _Sharded, plain_batchnorm

    model = create_model("tv_resnet18", 4, 32, seed=0)
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(create_model("tv_resnet18", 4, 32, seed=0))
    assert sum(isinstance(m, nn.SyncBatchNorm) for m in synced.modules()) == 20
    back = plain_batchnorm(synced).eval()
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in back.modules())
    assert sum(type(m) is nn.BatchNorm2d for m in back.modules()) == 20
    sa, sb = model.state_dict(), back.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(back(x), model.eval()(x), rtol=0, atol=0)
    cpu = types.SimpleNamespace(device=torch.device("cpu"))
    with pytest.warns(UserWarning, match="normalises each rank's shard"):
        assert _Sharded.prepare(None, model, cpu) is model
    plain = create_model("convnet_d2", 4, 16, width=4, seed=0)  # instance norm: nothing to say
    import warnings as w

    with w.catch_warnings():
        w.simplefilter("error")
        assert _Sharded.prepare(None, plain, cpu) is plain


@pytest.mark.cuda
def test_batch_norm_is_synced_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    import types

    from torch import nn

    from ladd.models import create_model
    from ladd.trainers.distributed import _Sharded

    cuda = types.SimpleNamespace(device=torch.device("cuda"))
    model = create_model("tv_resnet18", 4, 32, seed=0).cuda()
    synced = _Sharded.prepare(None, model, cuda)
    assert any(isinstance(m, nn.SyncBatchNorm) for m in synced.modules())
