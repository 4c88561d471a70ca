"""ladd.strategies.objective and the engines: each strategy is the same run on the reference
loop and the stacked (vmapped) engine, resumes exactly, is settled by the plan and recorded."""

from __future__ import annotations

import math

import pytest
import torch

from ladd.plan import plan_training
from ladd.strategies import LabelStrategy, Objective
from ladd.trainers.loop import TrainHooks
from ladd.trainers.reference import train_reference
from ladd.trainers.stacked import FastOptions, train_stacked
from ladd.training import TrainCheckpoint, TrainConfig, TrainingData, soft_cross_entropy

K, SIZE = 4, 16
STRATEGIES = [
    ("kl:4", "constant", "fixed"),
    ("gift", "constant", "fixed"),
    ("mse_gt", "constant", "fixed"),
    ("soft_ce", "hald", "fixed"),
    ("soft_ce", "soft_hard", "fixed"),
    ("kl", "temperature", "fixed"),
    ("kl", "temperature:calibrated", "fixed"),
    ("soft_ce", "constant", "learned"),
    ("kl:4", "hald", "learned"),
]


def _data() -> TrainingData:
    """10 'full images' with one-hot targets, then 30 'crops' with soft targets."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, SIZE, SIZE, generator=g)
    cls = torch.randint(0, K, (40,), generator=g)
    y = torch.softmax(2 * torch.randn(40, K, generator=g), 1)
    y[:10] = torch.nn.functional.one_hot(cls[:10], K).float()
    soft = torch.arange(40) >= 10
    return TrainingData(x, y, 10, 30, K, num_images=10, classes=cls, soft=soft)


def _cfg(strategy=("soft_ce", "constant", "fixed"), **kw) -> TrainConfig:
    loss, schedule, balance = strategy
    base = dict(
        arch="convnet_d2",
        epochs=4,
        lr=0.01,
        batch_size=16,
        seeds=(0, 1),
        dsa=False,
        protocol="mtt",
        model_options={"width": 4},
        loss_fn=loss,
        label_schedule=schedule,
        balance=balance,
    )
    base.update(kw)
    return TrainConfig(**base)


def _max_diff(a, b) -> float:
    return max(
        (p - q).abs().max().item()
        for ma, mb in zip(a.models, b.models, strict=True)
        for p, q in zip(ma.state_dict().values(), mb.state_dict().values(), strict=True)
    )


# -- the objective alone -------------------------------------------------------------------------


def _objective(loss="soft_ce", schedule="constant", balance="fixed", seeds=2, passes=4):
    strategy = LabelStrategy.parse(loss, schedule, balance)
    return Objective(strategy, passes, seeds, torch.device("cpu"), stacked=True)


def test_ladds_own_strategy_is_the_soft_cross_entropy():
    obj = _objective()
    obj.begin_pass()
    z = torch.randn(2, 6, K)
    y = torch.softmax(torch.randn(2, 6, K), -1)
    cls, soft = torch.randint(0, K, (2, 6)), torch.rand(2, 6) > 0.5
    w = torch.ones(2, 6)
    w[:, 4:] = 0
    torch.testing.assert_close(obj(z, y, cls, soft, w), soft_cross_entropy(z, y, w))


def test_learned_balance_starts_at_eq5_and_its_gradient_is_the_term_mean_rule():
    """At s = 0 the loss is Eq. 5's plus 0; d/ds_h = -H / B + f_h (ladd.strategies.balance)."""
    obj = _objective(balance="learned", seeds=1)
    obj.begin_pass()
    z = torch.randn(1, 6, K)
    y = torch.softmax(torch.randn(1, 6, K), -1)
    cls = torch.randint(0, K, (1, 6))
    soft = torch.tensor([[False, False, True, True, True, True]])
    loss = obj(z, y, cls, soft)
    ce = -(y * torch.log_softmax(z, -1)).sum(-1)[0]
    torch.testing.assert_close(loss[0], ce.mean())
    loss.sum().backward()
    h, d = float(ce[:2].sum()), float(ce[2:].sum())
    grad = obj.log_weights.grad[0]
    assert float(grad[0]) == pytest.approx(-h / 6 + 2 / 6, abs=1e-6)
    assert float(grad[1]) == pytest.approx(-d / 6 + 4 / 6, abs=1e-6)


def test_a_hard_pass_trains_every_sample_on_its_smoothed_class():
    obj = _objective(schedule="soft_hard", seeds=1, passes=2)
    obj.begin_pass()
    obj.begin_pass()  # pass 1 of 2: hard
    assert obj.phase == "hard"
    z = torch.zeros(1, 3, K)  # uniform student: CE to any label is ln K
    y = torch.softmax(torch.randn(1, 3, K), -1)
    loss = obj(z, y, torch.tensor([[0, 1, 2]]), torch.tensor([[False, True, True]]))
    assert float(loss[0]) == pytest.approx(math.log(K), abs=1e-6)


def test_calibration_finds_the_student_temperature_that_matches_the_teacher():
    """A label that is the student's logits at T_s = 0.5 (teacher T = 1): the grid's 0.5 wins,
    and the next pass uses it (LPQLD refits after each epoch)."""
    obj = _objective("kl:1", "temperature:calibrated", seeds=2, passes=3)
    obj.schedule.t0 = 1.0  # a teacher at T = 1: the label is used as stored
    obj.schedule.floor = 1e-3
    obj.begin_pass()
    z = torch.randn(2, 8, K) * 3
    scale = torch.tensor([0.5, 0.25]).view(2, 1, 1)
    y = torch.softmax(z / scale, -1)
    obj(z, y, torch.zeros(2, 8, dtype=torch.long), torch.ones(2, 8, dtype=torch.bool))
    assert obj.student_t.tolist() == [1.0, 1.0]  # the first pass keeps the start value
    obj.begin_pass()
    assert obj.student_t.tolist() == pytest.approx([0.5, 0.25], abs=1e-6)


# -- the engines ----------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: "-".join(s))
def test_reference_and_stacked_engines_train_the_same_weights(strategy, one_thread):
    """Every strategy on the field's loop and on the vmapped engine (one pair of learned
    weights per seed): the same weights, losses and strategy end state."""
    data = _data()
    cfg = _cfg(strategy)
    ref = train_reference(data, plan_training(data, cfg, "cpu", engine="reference"))
    st = train_stacked(
        data, plan_training(data, cfg, "cpu", engine="stacked"), options=FastOptions("off")
    )
    assert _max_diff(ref, st) < 1e-5
    for a, b in zip(ref.loss_curves, st.loss_curves, strict=True):
        assert a == pytest.approx(b, rel=1e-5)
    assert ref.strategy.keys() == st.strategy.keys()
    for k, v in ref.strategy.items():
        assert v == (pytest.approx(st.strategy[k], rel=1e-5) if not isinstance(v, str) else v)


def test_a_strategy_changes_the_training():
    data = _data()
    runs = [
        train_reference(data, plan_training(data, _cfg(s, seeds=(0,)), "cpu", engine="reference"))
        for s in [("soft_ce", "constant", "fixed"), ("kl:4", "constant", "fixed")]
    ]
    assert _max_diff(*runs) > 1e-4


class _Killed(Exception):
    pass


@pytest.mark.parametrize("engine", ["reference", "stacked"])
def test_a_killed_run_resumes_to_the_uninterrupted_weights(engine, tmp_path, one_thread):
    """The schedule's pass, the calibrated temperature and the learned weights (and their
    momentum) are in the checkpoint."""
    data = _data()
    cfg = _cfg(("kl:4", "temperature:calibrated", "learned"), epochs=5)
    plan = plan_training(data, cfg, "cpu", engine=engine)

    def run(hooks=None):
        if engine == "reference":
            return train_reference(data, plan, hooks)
        return train_stacked(data, plan, hooks, options=FastOptions("off"))

    whole = run()

    def kill(ev):
        if not ev.note and ev.metrics.get("epoch", 0) >= 3:
            raise _Killed

    ckpt = TrainCheckpoint(tmp_path / "state.safetensors", plan.key, seconds=0.0)
    with pytest.raises(_Killed):
        run(TrainHooks(progress=kill, checkpoint=ckpt))
    resumed = run(TrainHooks(checkpoint=TrainCheckpoint(ckpt.path, plan.key, seconds=0.0)))
    assert _max_diff(whole, resumed) == 0.0
    assert resumed.strategy == whole.strategy


# -- the plan -------------------------------------------------------------------------------------


def test_the_plan_settles_full_spellings_and_records_them():
    data = _data()
    plan = plan_training(data, _cfg(("kl", "temperature", "learned")), "cpu")
    cfg = plan.config
    assert (cfg.loss_fn, cfg.label_schedule, cfg.balance) == ("kl:t=20", "temperature", "learned")
    rec = plan.train_record()
    assert rec["loss_fn"] == "kl:t=20" and rec["balance"] == "learned"
    default = plan_training(data, _cfg(), "cpu").train_record()
    assert (default["loss_fn"], default["label_schedule"], default["balance"]) == (
        "soft_ce",
        "constant",
        "fixed",
    )


def test_default_strategy_keeps_the_run_keys_of_older_runs():
    """to_dict leaves the strategy's defaults out: a run planned before they existed keeps
    its key (checkpoints, sweep skip lists)."""
    d = _cfg().to_dict()
    assert not {"loss_fn", "label_schedule", "balance", "sampler"} & set(d)
    assert TrainConfig.from_dict(d) == _cfg()
    kl = _cfg(("kl:4", "constant", "fixed"))
    assert TrainConfig.from_dict(kl.to_dict()) == kl


@pytest.mark.parametrize(
    ("strategy", "mode", "message"),
    [
        (("soft_ce", "temperature", "fixed"), "ladd", "needs a loss that uses one"),
        (("soft_ce", "constant", "learned"), "crops_dense", "does not have both"),
        (("nope", "constant", "fixed"), "ladd", "unknown label loss"),
    ],
)
def test_strategies_that_cannot_train_fail_at_the_click(strategy, mode, message):
    with pytest.raises(ValueError, match=message):
        cfg = _cfg(strategy, mode=mode)
        plan_training(_data(), cfg, "cpu")
