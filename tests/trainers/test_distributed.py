"""ladd.trainers.distributed: one training on several processes (torchrun, gloo on the CPU)
trains the weights one process trains, only rank 0 writes, and a dead rank's job resumes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ladd.device import Ranks, ranks
from ladd.trainers.distributed import train_distributed
from ladd.trainers.reference import train_reference
from ladd.training import model_spec

sys.path.insert(0, str(Path(__file__).parent))
from ddp_worker import job_config, job_data  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).parent / "ddp_worker.py"
# Each rank sums its shard's gradients and gloo adds the ranks' sums: the same terms as one
# process's batch sum, added in another order. float32 rounding of that order (~1e-7 relative
# per step) grows over the 15 SGD steps with momentum to ~1e-6 here; 1e-4 leaves room for
# other BLAS paths and still fails on any real difference (a wrong shard weight moves the
# weights by ~1e-2, a shard's DSA drawn apart by more).
TOL = 1e-4


def test_shards_cover_the_batch_once_in_order():
    for n in (0, 1, 5, 63, 64):
        for world in (1, 2, 3):
            cuts = [Ranks(r, world).shard(n) for r in range(world)]
            got = [i for c in cuts for i in range(n)[c]]
            assert got == list(range(n))
            sizes = [c.stop - c.start for c in cuts]
            assert max(sizes) - min(sizes) <= 1
    assert ranks() == Ranks(0, 1) and Ranks().leader and not Ranks(1, 2).leader


def test_one_process_is_the_reference_loop():
    cfg, data = job_config(), job_data()
    spec = model_spec(cfg, data.num_classes, 16)
    one = train_distributed(data, spec, cfg, device="cpu")
    ref = train_reference(data, spec, cfg, device="cpu")
    for a, b in zip(one.models, ref.models, strict=True):
        for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert torch.equal(va, vb), k


def _torchrun(out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    return subprocess.run(
        [*cmd, str(WORKER), str(out), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _reference_weights() -> dict[str, torch.Tensor]:
    cfg, data = job_config(), job_data()
    spec = model_spec(cfg, data.num_classes, 16)
    ref = train_reference(data, spec, cfg, device="cpu")
    return {
        f"seed{s}.{k}": v
        for s, m in zip(cfg.seeds, ref.models, strict=True)
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

    cfg, data = job_config(), job_data()
    seed, name = key.split(".", 1)
    model = init_model(model_spec(cfg, data.num_classes, 16), int(seed[len("seed") :]))
    return model.state_dict()[name]


def test_two_ranks_train_the_one_process_weights(tmp_path):
    """Global batch 63 over 2 gloo ranks (shards of 32 and 31; the last batch of 48: 24 and
    24), 3 passes x 2 seeds with DSA: the weights of ladd.trainers.reference's one process
    (which the parity tests tie to MTT/DATM utils.evaluate_synset), to TOL."""
    run = _torchrun(tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    _assert_close(load_file(str(tmp_path / "weights.safetensors")), _reference_weights())


def test_a_dead_rank_fails_the_job_and_the_rerun_resumes_to_the_same_weights(tmp_path):
    killed = _torchrun(tmp_path, "--kill-at", "6")  # rank 1 dies in seed 1's passes
    assert killed.returncode != 0
    assert not (tmp_path / "weights.safetensors").exists()
    assert (tmp_path / "ckpt.safetensors").is_file()  # rank 0 saved at every pass boundary
    rerun = _torchrun(tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    # the rerun went on from rank 0's last save, after seed 1's first pass (4 passes a seed)
    _, _, group, _, done = (tmp_path / "resumed.txt").read_text().split()
    assert int(group) == 1 and int(done) >= 1
    _assert_close(load_file(str(tmp_path / "weights.safetensors")), _reference_weights())


@pytest.mark.parametrize("rank", [0, 1])
def test_only_rank_zero_reports_progress(monkeypatch, rank):
    """Ranks other than 0 hand the loop no progress hook and a checkpoint that never writes."""
    from ladd.trainers import distributed

    seen = {}

    def fake_fit(engine, data, cfg, hooks):
        seen["hooks"] = hooks
        return "trained"

    monkeypatch.setattr(distributed, "ranks", lambda: Ranks(rank, 2))
    monkeypatch.setattr(distributed, "fit", fake_fit)
    monkeypatch.setattr(distributed, "DistributedEngine", lambda *a: None)
    from ladd.training import TrainCheckpoint

    ckpt = TrainCheckpoint(Path("/nonexistent/ckpt.safetensors"), "k")
    cfg, data = job_config(), job_data()
    spec = model_spec(cfg, data.num_classes, 16)
    out = train_distributed(data, spec, cfg, device="cpu", progress=print, checkpoint=ckpt)
    hooks = seen["hooks"]
    assert out == "trained"
    if rank == 0:
        assert hooks.progress is print and hooks.checkpoint is ckpt
    else:
        assert hooks.progress is None and hooks.checkpoint is not ckpt
        hooks.checkpoint.save({}, {})  # a no-op: the folder does not even exist
        assert hooks.checkpoint.path == ckpt.path


@pytest.mark.parametrize("launch", ["torchrun", "gpus"])
def test_ladd_train_under_torchrun_records_one_run_with_the_one_process_result(tmp_path, launch):
    """`torchrun --nproc_per_node=2 -m ladd train ...`, or `ladd train ... --gpus 2`, which
    launches that: rank 0 alone records (one run in the database, trainer ddp), and its models
    score what one process's reference loop scores."""
    from ladd.store import Workspace

    ws = tmp_path / "ws"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    ladd = [sys.executable, "-m", "ladd"]
    made = subprocess.run(
        [*ladd, "random-real", "--source", "shapes", "--ipc", "3", "--workspace", str(ws)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    (set_dir,) = (ws / "sets").iterdir()
    train = [
        "train", str(set_dir), "--source", "shapes", "--mode", "baseline", "--epochs", "3",
        "--seeds", "2", "--width", "8", "--batch-size", "7", "--device", "cpu",
        "--workspace", str(ws),
    ]  # fmt: skip
    job = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd = [*job, "-m", "ladd", *train] if launch == "torchrun" else [*ladd, *train, "--gpus", "2"]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "trainer ddp, not fast" in run.stdout + run.stderr
    if launch == "gpus":
        assert "launching 2 ranks: torchrun --standalone --nproc_per_node=2 -m ladd" in run.stderr
    one = subprocess.run(
        [*ladd, *train, "--trainer", "reference"], env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    runs = [r for r in Workspace(ws).db.list_runs("train") if r.status == "done"]
    assert sorted(r.config["train"]["trainer"] for r in runs) == ["ddp", "reference"]
    ddp, ref = sorted(runs, key=lambda r: r.config["train"]["trainer"])
    assert ddp.metrics["per_seed"] == pytest.approx(ref.metrics["per_seed"], abs=1e-9)


def test_torchrun_command_drops_the_launch_option():
    from ladd.trainers.distributed import torchrun_command

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


WORKER_EVAL = """
import json, sys
import torch
from ladd.deploy import evaluate_models, evaluate_sharded
from ladd.device import ranks
from ladd.models import create_model
from ladd.trainers.distributed import finish_distributed, init_distributed

init_distributed("cpu")
g = torch.Generator().manual_seed(0)
x = torch.randn(101, 3, 16, 16, generator=g)  # 101: the ranks' shards are 51 and 50
y = torch.randint(0, 4, (101,), generator=g)
models = [create_model("convnet_d2", 4, 16, width=4, seed=s) for s in (0, 1)]
seen = []
real = evaluate_models
import ladd.deploy as deploy
def spy(models, inputs, labels, *a, **k):
    seen.append(int(inputs.shape[0]))
    return real(models, inputs, labels, *a, **k)
deploy.evaluate_models = spy
got = evaluate_sharded(models, x, y, 4, 16)
whole = real(models, x, y, 4, 16)
out = {"rank": ranks().rank, "seen": seen, "same": [
    (a.accuracy, a.per_class, a.confusion) == (b.accuracy, b.per_class, b.confusion)
    for a, b in zip(got, whole)]}
open(sys.argv[1] + f".{ranks().rank}", "w").write(json.dumps(out))
finish_distributed()
"""


def test_evaluation_is_sharded_over_the_ranks_with_the_one_process_scores(tmp_path):
    """ladd.deploy.evaluate_sharded on 2 gloo ranks: each rank predicts its half of the split
    (51 and 50 of 101 images), the summed counts give every rank the whole split's scores,
    equal to one process's to the bit (counts add exactly)."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER_EVAL)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    job = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    run = subprocess.run(
        [*job, str(script), str(tmp_path / "out")], env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    outs = [json.loads((tmp_path / f"out.{r}").read_text()) for r in (0, 1)]
    assert [o["seen"] for o in outs] == [[51], [50]]
    assert all(o["same"] == [True, True] for o in outs)


def test_ladd_augment_under_torchrun_labels_shards_and_writes_one_file(tmp_path):
    """`torchrun --nproc_per_node=2 -m ladd augment ...`: each rank labels its half of the
    images, rank 0 joins them and alone writes and records the file; its labels are one
    process's (float32 codec: to 1e-6, the ranks' batches differ in size only)."""
    from safetensors.torch import load_file

    from ladd.store import Workspace

    ws = tmp_path / "ws"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    ladd = [sys.executable, "-m", "ladd"]

    def ok(cmd: list[str]) -> str:
        run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        return run.stdout

    ok([*ladd, "random-real", "--source", "shapes", "--ipc", "3", "--workspace", str(ws)])
    ok([
        *ladd, "train-labeler", "--source", "shapes", "--epochs", "1", "--save-at", "1",
        "--width", "8", "--limit-per-class", "10", "--workspace", str(ws), "--device", "cpu",
    ])  # fmt: skip
    (set_dir,) = (ws / "sets").iterdir()
    (lab_dir,) = (ws / "labelers").iterdir()
    common = [
        "augment", str(set_dir), "--labeler", str(lab_dir / "epoch_001.safetensors"),
        "--source", "shapes", "--crops-per-side", "3", "--codec", "float32", "--workspace", str(ws),
        "--device", "cpu",
    ]  # fmt: skip
    job = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    ok([*job, "-m", "ladd", *common, "--out", str(tmp_path / "two.safetensors")])
    ok([*ladd, *common, "--out", str(tmp_path / "one.safetensors")])
    two, one = load_file(tmp_path / "two.safetensors"), load_file(tmp_path / "one.safetensors")
    assert two.keys() == one.keys() and two["dense"].shape == (30, 9, 10)
    assert torch.equal(two["images"], one["images"]) and torch.equal(two["labels"], one["labels"])
    torch.testing.assert_close(two["dense"], one["dense"], rtol=0, atol=1e-6)
    torch.testing.assert_close(two["full_soft"], one["full_soft"], rtol=0, atol=1e-6)
    runs = [r for r in Workspace(ws).db.list_runs("augment") if r.status == "done"]
    assert len(runs) == 2  # one for the torchrun job (rank 0), one for the single process


def test_no_ladd_option_is_taken_by_torchruns_parser():
    """torchrun's argument parser reads abbreviations of its own options anywhere on the line,
    after the script's name too (`--n` for --nnodes ...): every option of every ladd command,
    in the spelling ladd.trainers.distributed.torchrun_command passes, reaches ladd."""
    import click
    import typer
    from torch.distributed.run import get_args_parser

    from ladd.cli import app
    from ladd.trainers.distributed import TORCHRUN_CLASHES

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
