import pytest
import torch

from ladd.data import load_source
from ladd.distill import (
    DMConfig,
    ExpertConfig,
    MTTConfig,
    distill_dm,
    distill_mtt,
    distill_random,
    load_trajectory,
    train_experts,
)
from ladd.sets import load_distilled

NARROW = {"width": 16}


@pytest.fixture(scope="module")
def shapes_train():
    return load_source("shapes", "train", limit_per_class=30, seed=0)


def _mean(xs):
    return sum(xs) / len(xs)


def test_dm_lowers_its_matching_loss_and_round_trips(shapes_train, tmp_path):
    cfg = DMConfig(ipc=2, iterations=30, batch_real=30, model_options=NARROW, seed=0)
    res = distill_dm(shapes_train, cfg, device="cpu")
    assert len(res.losses) == 30
    assert _mean(res.losses[-6:]) < 0.8 * _mean(res.losses[:6])
    ds = res.distilled
    assert ds.images.shape == (20, 3, 32, 32) and ds.ipc == 2
    assert torch.equal(ds.labels, torch.arange(10).repeat_interleave(2))
    back = load_distilled(res.save(tmp_path / "dm"))
    torch.testing.assert_close(back.images, ds.images)
    assert torch.equal(back.labels, ds.labels)
    assert (tmp_path / "dm" / "distill.json").exists()


def test_dm_is_seed_reproducible(shapes_train):
    cfg = DMConfig(ipc=1, iterations=3, batch_real=32, model_options=NARROW, seed=5)
    a = distill_dm(shapes_train, cfg, device="cpu")
    b = distill_dm(shapes_train, cfg, device="cpu")
    assert torch.equal(a.distilled.images, b.distilled.images)
    assert a.losses == b.losses


@pytest.fixture(scope="module")
def experts(shapes_train, tmp_path_factory):
    out = tmp_path_factory.mktemp("experts")
    cfg = ExpertConfig(num_experts=2, epochs=3, model_options=NARROW, batch_size=64)
    return train_experts(shapes_train, cfg, out, device="cpu")


def test_experts_save_every_epoch_and_resume(experts, shapes_train):
    assert len(experts) == 2
    traj = load_trajectory(experts[0])
    n_params = sum(p.numel() for p in _model_of(traj).parameters())
    assert traj.params.shape == (4, n_params)
    assert not torch.equal(traj.params[0], traj.params[-1])
    # a rerun with the same config reuses the files instead of retraining
    mtimes = [p.stat().st_mtime_ns for p in experts]
    cfg = ExpertConfig(num_experts=2, epochs=3, model_options=NARROW, batch_size=64)
    again = train_experts(shapes_train, cfg, experts[0].parent, device="cpu")
    assert [p.stat().st_mtime_ns for p in again] == mtimes


def _model_of(traj):
    from ladd.models import create_from_spec

    return create_from_spec(traj.spec)


def test_mtt_lowers_its_matching_loss_learns_lr_and_round_trips(experts, shapes_train, tmp_path):
    # One expert and a fixed window (start epoch 0), no DSA: the target does not move, so the
    # normalised matching loss must fall as the images and the learning rate adapt.
    cfg = MTTConfig(
        ipc=2,
        iterations=10,
        syn_steps=2,
        expert_epochs=2,
        max_start_epoch=0,
        lr_img=100.0,
        dsa=False,
        checkpoint_every=5,
    )
    res = distill_mtt(shapes_train, experts[:1], cfg, device="cpu", checkpoint_dir=tmp_path)
    assert len(res.losses) == 10
    assert res.losses[-1] < 0.75 * res.losses[0]
    assert sum(b < a for a, b in zip(res.losses, res.losses[1:], strict=False)) >= 7
    assert res.distilled.lr is not None and res.distilled.lr != cfg.lr_teacher
    assert res.peak_memory_bytes > 0
    back = load_distilled(res.save(tmp_path / "mtt"))
    assert back.lr == pytest.approx(res.distilled.lr)
    torch.testing.assert_close(back.images, res.distilled.images)
    # resuming a finished run reproduces its result without new iterations
    again = distill_mtt(shapes_train, experts[:1], cfg, device="cpu", checkpoint_dir=tmp_path)
    assert again.losses == res.losses


def test_mtt_refuses_a_window_longer_than_the_experts(experts, shapes_train):
    cfg = MTTConfig(ipc=1, iterations=1, expert_epochs=2, max_start_epoch=2)
    with pytest.raises(ValueError, match="exceeds"):
        distill_mtt(shapes_train, experts, cfg, device="cpu")


def test_random_is_class_balanced(shapes_train):
    res = distill_random(shapes_train, ipc=3, seed=1)
    assert res.distilled.ipc_per_class() == [3] * 10


@pytest.mark.slow
def test_dm_set_beats_random_real_of_the_same_ipc_on_shapes():
    # A real check of the method: same IPC, same student protocol, same test split.
    from plans import train_and_test

    from ladd.training import TrainConfig

    train = load_source("shapes", "train", limit_per_class=100, seed=0)
    test = load_source("shapes", "test", limit_per_class=50, seed=0)
    dm = distill_dm(
        train, DMConfig(ipc=3, iterations=100, batch_real=100, model_options=NARROW), device="cpu"
    )
    cfg = TrainConfig(
        arch="convnet_d3", mode="baseline", epochs=150, seeds=(0, 1, 2), model_options={"width": 32}
    )
    acc_dm = train_and_test(dm.distilled, test, cfg).accuracy_mean
    acc_random = _mean(
        [
            train_and_test(distill_random(train, 3, seed=s).distilled, test, cfg).accuracy_mean
            for s in (0, 1)
        ]
    )
    print(f"shapes IPC 3: DM {acc_dm:.3f} vs random real {acc_random:.3f}")
    # measured: DM 0.197 vs random 0.148 (seeds 0, 1)
    assert acc_dm > acc_random + 0.02


def test_mtt_resumed_midway_ends_with_the_uninterrupted_images(experts, shapes_train, tmp_path):
    """The checkpoint carries the images, the lr, the RNG and both optimisers' momentum, so a
    run stopped after iteration 4 and resumed ends bit for bit where an uninterrupted one does."""
    cfg = MTTConfig(
        ipc=1, iterations=8, syn_steps=2, expert_epochs=2, max_start_epoch=1, checkpoint_every=4
    )
    whole = distill_mtt(shapes_train, experts[:2], cfg, device="cpu")

    class Killed(Exception):
        pass

    def kill_after_4(ev):
        if ev.step == 5:
            raise Killed

    with pytest.raises(Killed):
        distill_mtt(
            shapes_train,
            experts[:2],
            cfg,
            device="cpu",
            checkpoint_dir=tmp_path,
            progress=kill_after_4,
        )
    resumed = distill_mtt(shapes_train, experts[:2], cfg, device="cpu", checkpoint_dir=tmp_path)
    assert torch.equal(resumed.distilled.images, whole.distilled.images)
    assert resumed.losses == whole.losses and resumed.distilled.lr == whole.distilled.lr
