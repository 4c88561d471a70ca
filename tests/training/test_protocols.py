"""ladd.training.protocols: the protocol tables (mtt, glad, rded) against the code the paper
follows; the per-architecture rates they use are the model registry's (tests/test_plan.py checks
how a plan picks them)."""

from __future__ import annotations

import pytest

from ladd.models import adamw_lr
from ladd.training import PROTOCOLS, TrainConfig, default_protocol, rded_batch_size


def test_default_protocol_follows_the_set_family():
    assert default_protocol(32) == "mtt" and default_protocol(64) == "mtt"
    assert default_protocol(128) == "glad" and default_protocol(224) == "glad"
    with pytest.raises(ValueError, match="protocol"):
        TrainConfig(protocol="dd")
    with pytest.raises(ValueError, match="plan the run first"):  # "auto" is settled by a plan
        _ = TrainConfig().passes


def test_the_protocols_say_how_they_train():
    mtt, glad, rded = PROTOCOLS["mtt"], PROTOCOLS["glad"], PROTOCOLS["rded"]
    assert (mtt.schedule, mtt.ema_beta, mtt.extra_pass, mtt.optimizer) == (
        "step_half", None, True, "sgd",
    )  # fmt: skip
    assert (glad.schedule, glad.ema_beta, glad.extra_pass) == ("warmup_cosine", 0.995, False)
    assert (rded.schedule, rded.optimizer, rded.augment) == ("half_cosine", "adamw", "rded")
    assert TrainConfig(protocol="mtt", epochs=10).passes == 11  # range(Epoch + 1)
    assert TrainConfig(protocol="glad", epochs=10).passes == 10
    assert TrainConfig(protocol="rded", epochs=10).passes == 10


def test_rded_rates_and_batch_are_its_arguments():
    """RDED argument.py lines 276-306 (--adamw-lr by student, the registry's `lr_adamw`) and
    234-258 (--re-batch-size when 0: 100 / 50 / 10 at IPC 50 / 10 / 1, x2 at 100 and 1000
    classes, <= ipc x classes)."""
    assert adamw_lr("tv_resnet18") == 0.001
    assert adamw_lr("tv_mobilenet_v2") == 0.0025
    assert adamw_lr("vgg11") == 0.0005
    assert adamw_lr("convnet_d3") == 0.001
    with pytest.raises(ValueError, match="no AdamW lr for 'convnet_d2'.*pass --lr"):
        adamw_lr("convnet_d2")
    assert rded_batch_size(10, 1000) == 100  # Table 3: ImageNet-1K, IPC 10
    assert rded_batch_size(50, 1000) == 200 and rded_batch_size(1, 1000) == 20
    assert rded_batch_size(10, 10) == 50 and rded_batch_size(1, 10) == 10
    assert rded_batch_size(10, 100) == 100
    assert rded_batch_size(1, 4) == 4  # at most ipc x classes


def test_rded_replaces_dsa_with_its_augmentation():
    assert TrainConfig(protocol="rded").augmentation == "rded"
    assert TrainConfig(protocol="rded", dsa=False).augmentation == ""
    assert TrainConfig(protocol="mtt").augmentation == "dsa"
    assert TrainConfig(protocol="glad").augmentation == "dsa"
    assert TrainConfig(protocol="glad", dsa_strategy="").augmentation == ""
    with pytest.raises(ValueError, match="plan the run first"):  # "auto": not settled yet
        _ = TrainConfig().augmentation
