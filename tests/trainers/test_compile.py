"""ladd.trainers.compile and .warmup: the compile policy, the workspace's compile cache and its index,
warm-up, and the compile/train split of the fast trainer's report (CPU-sized)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from plans import plan

from ladd.compile_cache import compile_cache_dir, use_compile_cache
from ladd.device import resolve_precision
from ladd.trainers import train_models
from ladd.trainers.compile import (
    INDEX_NAME,
    CompilePolicy,
    StepRecord,
    cache_is_warm,
    decide_compile,
    read_index,
    record_step,
    step_key,
)
from ladd.trainers.stacked import FastOptions, train_stacked
from ladd.trainers.warmup import warmup
from ladd.training import TrainConfig, TrainingData


@pytest.fixture
def inductor_env(monkeypatch):
    """Keep TORCHINDUCTOR_CACHE_DIR as it was: use_compile_cache sets it for the process."""
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.delenv("LADD_COMPILE_CACHE", raising=False)
    yield
    # monkeypatch restores the variable (or its absence) after the test


def test_precision_auto_is_bf16_on_cuda_and_fp32_elsewhere() -> None:
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("fp32", "cuda") == "fp32"  # fp32 stays a flag
    assert resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="unknown precision"):
        resolve_precision("fp16", "cpu")


# -- the policy ---------------------------------------------------------------------------------


def test_short_runs_stay_eager_and_long_runs_compile_with_a_cold_cache() -> None:
    # 32 px ConvNet-D3, 5 seeds: ~11 steps an epoch, ~14 ms an eager stacked step (H200 scale).
    pol = CompilePolicy(cold_seconds=45.0, speedup=2.0)
    short = decide_compile(50 * 11, 0.014, policy=pol)  # the dashboard's 50 epochs
    assert not short.compile and short.eager_seconds == pytest.approx(550 * 0.014)
    assert "eager" in short.reason
    long = decide_compile(1000 * 11, 0.014, policy=pol)
    assert long.compile
    assert long.compiled_seconds == pytest.approx(45.0 + 11000 * 0.014 / 2.0)
    assert long.compiled_seconds < long.eager_seconds


def test_a_warm_measured_record_makes_a_shorter_run_worth_compiling() -> None:
    steps, eager = 300 * 11, 0.014  # 300 epochs: eager ~46 s
    cold = decide_compile(steps, eager)
    rec = StepRecord({}, compile_seconds=6.0, compiled_step_seconds=0.006)
    warm = decide_compile(steps, eager, record=rec, warm=True)
    assert not cold.compile and warm.compile
    assert warm.compile_seconds == 6.0
    assert warm.compiled_seconds == pytest.approx(6.0 + steps * 0.006)
    # The same record with its kernels gone from the cache costs a cold compile again.
    emptied = decide_compile(steps, eager, record=rec, warm=False)
    assert emptied.compile_seconds == CompilePolicy().cold_seconds and not emptied.compile


def test_policy_needs_a_real_saving_before_compiling() -> None:
    rec = StepRecord({}, compile_seconds=5.0, compiled_step_seconds=0.010)
    # saving 100 * (0.0102 - 0.010) - 5 < 0: a compiled step barely faster never pays
    assert not decide_compile(100, 0.0102, record=rec, warm=True).compile
    # a saving below the margin (10 % of the eager total) is not taken either
    pol = CompilePolicy(margin=0.1, min_saving_seconds=0.0)
    d = decide_compile(1000, 0.01, record=rec, warm=True, policy=pol)  # eager 10 s, compiled 15 s
    assert not d.compile
    assert not decide_compile(0, 0.01).compile  # nothing to run


# -- the cache folder and its index --------------------------------------------------------------


def test_compile_cache_lives_in_the_workspace_cache_per_torch_version(
    tmp_path, monkeypatch, inductor_env
) -> None:
    monkeypatch.setenv("LADD_CACHE_DIR", str(tmp_path / "data-cache"))
    folder = compile_cache_dir()
    assert folder.parent == (tmp_path / "data-cache" / "compile").resolve()
    assert folder.name == "torch-" + torch.__version__.replace("+", "_")
    monkeypatch.setenv("LADD_COMPILE_CACHE", str(tmp_path / "elsewhere"))
    assert compile_cache_dir().parent == (tmp_path / "elsewhere").resolve()
    assert compile_cache_dir(tmp_path / "given").parent == (tmp_path / "given").resolve()


def test_use_compile_cache_creates_the_folder_and_points_inductor_at_it(
    tmp_path, inductor_env
) -> None:
    target = tmp_path / "ws" / "cache" / "compile"
    got = use_compile_cache(target)
    assert got == target.resolve() and target.is_dir()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(target.resolve())
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    assert Path(cache_dir()) == target.resolve()  # what inductor itself will use
    # An explicit choice stays when no folder is asked for.
    assert use_compile_cache() == target.resolve()
    assert not cache_is_warm(target)
    (target / "fxgraph" / "ab").mkdir(parents=True)
    assert cache_is_warm(target)


def test_index_records_and_updates_a_step(tmp_path) -> None:
    desc = {"arch": "convnet_d3", "image": [3, 32, 32], "seeds": 5}
    assert read_index(tmp_path) == {}
    record_step(tmp_path, desc, compile_seconds=30.0, compiled_step_seconds=0.01)
    rec = record_step(
        tmp_path, desc, compile_seconds=5.0, compiled_step_seconds=0.008, eager_step_seconds=0.02
    )
    assert rec.runs == 2 and rec.compile_seconds == 5.0
    idx = read_index(tmp_path)
    assert list(idx) == [step_key(desc)] and idx[step_key(desc)] == rec
    assert step_key({**desc, "seeds": 4}) != step_key(desc)
    (tmp_path / INDEX_NAME).write_text("{not json")  # a damaged index is only a missing hint
    assert read_index(tmp_path) == {}


# -- the trainer's report and warm-up -----------------------------------------------------------


def _data(t: int = 24, size: int = 16, k: int = 4) -> TrainingData:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(t, 3, size, size, generator=g)
    y = torch.softmax(torch.randn(t, k, generator=g), dim=1)
    return TrainingData(x, y, t, 0, k)


def _cfg(**kw) -> TrainConfig:
    base = dict(
        arch="convnet_d2",
        epochs=2,
        lr=0.01,
        batch_size=8,
        seeds=(0, 1),
        dsa=True,
        model_options={"width": 4},
    )
    base.update(kw)
    return TrainConfig(**base)


def test_result_reports_compile_and_train_seconds_apart(one_thread) -> None:
    cfg, data = _cfg(), _data()
    res = train_stacked(data, plan(data, cfg, "stacked"))
    rep = res.report
    assert rep is not None and rep.engine == "stacked" and rep.compile_mode == "off"
    assert rep.seconds_compile == 0.0 and rep.seconds_train > 0
    assert rep.seconds_train <= res.seconds + 1e-6
    assert rep.precision == "fp32" and rep.cache_dir is None  # the CPU compiles nothing
    assert rep.to_dict()["seconds_compile"] == 0.0
    seq = train_models(data, plan(data, cfg, None))  # the plan's engine on a CPU: sequential
    assert seq.engine["engine"] == "sequential" and seq.engine["seconds_train"] == seq.seconds


def test_warmup_on_the_cpu_times_an_eager_step_and_caches_nothing(
    tmp_path, one_thread, inductor_env
) -> None:
    rep = warmup(
        "convnet_d2",
        16,
        num_classes=4,
        seeds=2,
        batch_size=8,
        model_options={"width": 4},
        device="cpu",
        cache_dir=tmp_path / "cc",
    )
    assert rep.compile_mode == "off" and rep.seconds_compile == 0.0
    assert rep.eager_step_seconds is not None and rep.eager_step_seconds > 0
    assert rep.description["image"] == [3, 16, 16] and rep.description["seeds"] == 2
    assert any("nothing to compile" in n for n in rep.notes)
    assert rep.cache_dir is None and not (tmp_path / "cc").exists()
    assert json.loads(json.dumps(rep.to_dict()))["key"] == rep.key


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None, reason="inductor's CPU backend needs a compiler")
@pytest.mark.skipif(
    not os.environ.get("LADD_TEST_COMPILE"),
    reason="compiles with inductor's C++ backend: 1-4 min on a shared 2-core CPU; set "
    "LADD_TEST_COMPILE=1 (the GPU script, scripts/speed_gpu.sh, covers it on CUDA)",
)
def test_warmup_compiles_into_the_cache_and_a_later_run_finds_it_warm(
    tmp_path, one_thread, inductor_env
) -> None:
    """The whole cache path on the CPU (inductor's C++ backend stands in for the GPU's): warm-up
    writes the FX-graph cache and the index; a training run that asks for the same step finds
    the index entry, its cache warm, and reports compile seconds apart from training seconds."""
    cache = tmp_path / "cc"
    opts = FastOptions(compile="default", cache_dir=str(cache))
    rep = warmup(
        "convnet_d1",
        8,
        num_classes=3,
        seeds=2,
        batch_size=4,
        model_options={"width": 2},
        dsa=False,
        device="cpu",
        options=opts,
    )
    assert rep.compile_mode == "default" and rep.seconds_compile > 0
    assert rep.cache_dir == str(cache.resolve()) and cache_is_warm(cache)
    idx = read_index(cache)
    assert rep.key in idx and idx[rep.key].compile_seconds == pytest.approx(rep.seconds_compile)
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(cache.resolve())

    cfg = _cfg(arch="convnet_d1", batch_size=4, epochs=1, dsa=False, model_options={"width": 2})
    data = _data(t=8, size=8, k=3)
    res = train_stacked(data, plan(data, cfg, "stacked"), options=opts)
    assert res.report.compile_mode == "default" and res.report.cache_warm is True
    assert res.report.seconds_compile > 0 and res.report.seconds_train > 0
    assert read_index(cache)[rep.key].runs == 2  # the same step: warm-up's entry, updated
