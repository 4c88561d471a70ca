"""torchvision's ResNet-18, ResNet-50 and MobileNet-V2 in the registry (ladd.models.tv).

Parameter counts and GMACs are torchvision's published figures (its weights' `meta`
"num_params" and "_ops"), checked against torchvision's builders as well; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import copy
import io

import pytest
import torch
import torchvision
from torch import nn

from ladd.models import (
    ModelSpec,
    cam_target,
    check_model_options,
    create_model,
    default_lr,
    list_models,
    model_family,
)
from ladd.models.tv import load_torchvision_checkpoint

TV = {
    "tv_resnet18": (torchvision.models.resnet18, torchvision.models.ResNet18_Weights),
    "tv_resnet50": (torchvision.models.resnet50, torchvision.models.ResNet50_Weights),
    "tv_mobilenet_v2": (torchvision.models.mobilenet_v2, torchvision.models.MobileNet_V2_Weights),
}
NAMES = sorted(TV)


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _cam_layer(name: str, model: nn.Module) -> nn.Module:
    return model.features[-1] if name == "tv_mobilenet_v2" else model.layer4[-1]


# --- registry ---------------------------------------------------------------------------------


def test_registered_as_the_torchvision_family_with_the_sgd_rate():
    assert set(NAMES) <= set(list_models())
    for name in NAMES:
        assert model_family(name) == "torchvision"
        assert default_lr(name, 32) == default_lr(name, 224) == 0.001


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("name", NAMES)
def test_forward_shape_and_spec(name, size):
    model = create_model(name, num_classes=5, image_size=size, seed=0)
    with torch.no_grad():
        assert model(torch.randn(2, 3, size, size)).shape == (2, 5)
    assert model.spec == ModelSpec(name, 5, size, 3, {})


@pytest.mark.parametrize("name", NAMES)
def test_built_by_torchvisions_builder_under_the_seed(name):
    """Same seed, same weights; another seed, others; and the very weights torchvision's
    builder draws under that seed (the registry adds no draws of its own)."""
    builder, _ = TV[name]
    a = create_model(name, 10, 32, seed=0)
    assert _same_weights(a, create_model(name, 10, 32, seed=0))
    assert not _same_weights(a, create_model(name, 10, 32, seed=1))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        ref = builder(weights=None, num_classes=10)
    assert type(a) is type(ref)
    assert _same_weights(a, ref)


# --- torchvision's figures and keys, 1000 classes (meta device: no memory, no init cost) --------


@pytest.mark.parametrize(
    ("name", "params"),
    [("tv_resnet18", 11_689_512), ("tv_resnet50", 25_557_032), ("tv_mobilenet_v2", 3_504_872)],
)
def test_1000_class_parameter_counts_are_torchvisions(name, params):
    builder, weights = TV[name]
    with torch.device("meta"):
        model = create_model(name, 1000, 224)
        ref = builder()
    assert _count(model) == params == _count(ref)
    assert weights.IMAGENET1K_V1.meta["num_params"] == params


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_keys_and_shapes_are_torchvisions(name):
    """So a torchvision checkpoint loads as it is; the cam target adds no keys."""
    builder, _ = TV[name]
    with torch.device("meta"):
        ours = create_model(name, 1000, 224).state_dict()
        theirs = builder().state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)


def test_inference_flops_are_torchvisions_gmacs():
    """ladd.flops counts 2 FLOPs a multiply-add; torchvision publishes GMACs at 224 px ("_ops"):
    ResNet-18 1.814, ResNet-50 4.089, MobileNet-V2 0.301."""
    from ladd.flops import inference_flops_per_sample

    for name in NAMES:
        _, weights = TV[name]
        with torch.device("meta"):
            flops = inference_flops_per_sample(
                create_model(name, 1000, 224), torch.zeros(1, 3, 224, 224)
            )
        assert flops / 2e9 == pytest.approx(weights.IMAGENET1K_V1.meta["_ops"], abs=0.001)


def test_train_flops_as_the_sweep_cost_table_measures_them():
    """ladd.sweep.cost `_flops`: train_flops_per_sample on a 10-class model, batch of 2 zeros."""
    from ladd.flops import inference_flops_per_sample, train_flops_per_sample

    model = create_model("tv_resnet18", 10, 32, seed=0)
    x = torch.zeros(2, 3, 32, 32)
    train = train_flops_per_sample(model, x, 10)
    forward = inference_flops_per_sample(model, x)
    assert forward > 0 and 2.5 * forward < train < 3.5 * forward  # backward ~ 2 forwards


# --- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_one_channel_replaces_the_first_conv_alike(name):
    model = create_model(name, 4, 32, channels=1, seed=0)
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 4)
    first = model.features[0][0] if name == "tv_mobilenet_v2" else model.conv1
    with torch.device("meta"):
        ref = create_model(name, 4, 32)
    ref_first = ref.features[0][0] if name == "tv_mobilenet_v2" else ref.conv1
    assert first.in_channels == 1
    for attr in ("out_channels", "kernel_size", "stride", "padding", "dilation", "groups"):
        assert getattr(first, attr) == getattr(ref_first, attr)
    assert (first.bias is None) == (ref_first.bias is None)


def test_width_is_refused_with_the_registrys_message():
    with pytest.raises(ValueError, match="'tv_resnet18' has no option 'width'.*convnet"):
        check_model_options("tv_resnet18", {"width": 32})
    with pytest.raises(ValueError, match="width"):
        create_model("tv_mobilenet_v2", 10, 32, width=32)


# --- GradCAM target, copies, functional calls -------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_cam_target_is_the_stated_layer(name):
    model = create_model(name, 4, 32, seed=0).eval()
    layer, reshape = cam_target(model)
    assert layer is _cam_layer(name, model) and reshape is None
    seen = []
    handle = layer.register_forward_hook(lambda module, inputs, out: seen.append(out.shape))
    try:
        with torch.no_grad():
            model(torch.randn(1, 3, 32, 32))
    finally:
        handle.remove()
    maps = {"tv_resnet18": 512, "tv_resnet50": 2048, "tv_mobilenet_v2": 1280}[name]
    assert seen == [(1, maps, 1, 1)]  # 32 px / 32


def test_a_gradcam_hook_on_the_target_sees_activations_and_gradients():
    model = create_model("tv_resnet18", 4, 64, seed=0).eval()
    layer, _ = cam_target(model)
    seen = {}

    def hook(module, inputs, out):
        out.retain_grad()
        seen["act"] = out

    handle = layer.register_forward_hook(hook)
    try:
        model(torch.randn(1, 3, 64, 64))[0, 2].backward()
    finally:
        handle.remove()
    act = seen["act"]
    assert act.shape == act.grad.shape == (1, 512, 2, 2)  # 64 px / 32
    weights = act.grad.mean(dim=(2, 3), keepdim=True)  # GradCAM's channel weights
    assert torch.relu((weights * act).sum(1)).shape == (1, 2, 2)


def test_ladd_cam_maps_at_64px():
    """ladd.cam on the target (tests/test_cam.py runs every registered model at 32 px, where
    the target's map is 1 x 1)."""
    pytest.importorskip("pytorch_grad_cam")
    from ladd.cam import compute_cam

    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    model = create_model("tv_resnet18", 4, 64, seed=0)
    maps = compute_cam(model, x, targets=[0, 3], method="gradcam")
    assert maps.shape == (2, 64, 64)
    assert 0.0 <= maps.min() and maps.max() <= 1.0 and maps.max() > 0.0


def test_copies_keep_the_cam_target_on_their_own_layer():
    model = create_model("tv_resnet18", 4, 32, seed=0)
    assert not any(k.startswith("cam_target_layer") for k in model.state_dict())
    assert "cam_target_layer" not in dict(model.named_children())
    clone = copy.deepcopy(model)
    assert clone.cam_target_layer is clone.layer4[-1] is not model.layer4[-1]
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    assert loaded.cam_target_layer is loaded.layer4[-1]
    assert _same_weights(loaded, model)


def test_functional_call_and_state_dict_round_trip():
    model = create_model("tv_mobilenet_v2", 4, 32, seed=0).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
        tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
        torch.testing.assert_close(torch.func.functional_call(model, tensors, (x,)), out)
        fresh = create_model("tv_mobilenet_v2", 4, 32, seed=1).eval()
        fresh.load_state_dict(model.state_dict())
        torch.testing.assert_close(fresh(x), out)


# --- load_torchvision_checkpoint --------------------------------------------------------------


@pytest.mark.parametrize("layout", ["bare", "ddp", "state_dict", "model_ddp"])
def test_checkpoint_layouts_load(tmp_path, layout):
    model = create_model("tv_resnet18", 10, 32, seed=0)
    sd = model.state_dict()
    ddp = {f"module.{k}": v for k, v in sd.items()}
    obj = {
        "bare": sd,
        "ddp": ddp,
        "state_dict": {"state_dict": sd, "epoch": 3},
        "model_ddp": {"model": ddp, "optimizer": {"lr": torch.tensor(0.1)}},
    }[layout]
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path)
    loaded = load_torchvision_checkpoint("tv_resnet18", path, num_classes=10, image_size=32)
    assert _same_weights(loaded, model)
    assert loaded.spec == ModelSpec("tv_resnet18", 10, 32)


def test_checkpoint_without_num_batches_tracked_loads(tmp_path):
    """torchvision's older checkpoints (saved before torch 0.4.1) lack BatchNorm's counter."""
    model = create_model("tv_mobilenet_v2", 10, 32, seed=0)
    sd = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(sd, tmp_path / "old.pth")
    loaded = load_torchvision_checkpoint("tv_mobilenet_v2", tmp_path / "old.pth", 10, 32)
    assert _same_weights(loaded, model)


def test_a_1000_class_checkpoint_into_10_classes_says_so(tmp_path):
    path = tmp_path / "imagenet.pth"
    torch.save(create_model("tv_resnet18", 1000, 224, seed=0).state_dict(), path)
    with pytest.raises(ValueError) as info:
        load_torchvision_checkpoint("tv_resnet18", path, num_classes=10, image_size=224)
    first = str(info.value).splitlines()[0]
    assert first == f"{path}: its classifier (fc) has 1000 outputs, the set has 10 classes"


def test_another_architectures_checkpoint_names_the_keys(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(create_model("tv_resnet18", 10, 32, seed=0).state_dict(), path)
    with pytest.raises(
        ValueError, match=r"r18\.pth: not a tv_resnet50 state_dict: \d+ keys missing"
    ):
        load_torchvision_checkpoint("tv_resnet50", path, 10, 32)


def test_pickled_objects_are_refused_by_weights_only(tmp_path):
    """A training checkpoint with its argparse args (torchvision's references save one)."""
    path = tmp_path / "train.pth"
    sd = create_model("tv_resnet18", 10, 32, seed=0).state_dict()
    torch.save({"model": sd, "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(ValueError, match=r"train\.pth: torch\.load\(weights_only=True\)") as info:
        load_torchvision_checkpoint("tv_resnet18", path, 10, 32)
    assert info.value.__cause__ is not None  # torch's own refusal, chained


def test_files_without_a_state_dict_and_other_models_are_refused(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ValueError, match=r"list\.pth: no state_dict in it"):
        load_torchvision_checkpoint("tv_resnet18", path, 10, 32)
    with pytest.raises(ValueError, match="'resnet18' is not a torchvision model"):
        load_torchvision_checkpoint("resnet18", path, 10, 32)


# --- training through the engines -------------------------------------------------------------


def test_both_engines_train_tv_resnet18_to_the_same_weights():
    """BatchNorm's running statistics included: the stacked engine (all seeds in one vmapped
    step) gives each seed the reference loop's weights."""
    from plans import plan

    from ladd.trainers import train_models
    from ladd.training import TrainConfig, TrainingData

    g = torch.Generator().manual_seed(0)
    x = torch.randn(20, 3, 32, 32, generator=g)
    y = torch.nn.functional.one_hot(torch.arange(20) % 4, 4).float()
    data = TrainingData(inputs=x, targets=y, num_full=20, num_crops=0, num_classes=4, num_images=20)
    runs = {}
    for trainer in ("reference", "fast"):
        cfg = TrainConfig(
            arch="tv_resnet18",
            mode="baseline",
            epochs=1,
            lr=0.01,
            batch_size=10,
            seeds=(0, 1),
            protocol="mtt",
            trainer=trainer,
        )
        p = plan(data, cfg, None)  # the engine the front ends get: on a CPU with batch norm,
        assert p.engine == {"reference": "reference", "fast": "sequential"}[trainer]  # sequential
        runs[trainer] = train_models(data, p).models
    assert not _same_weights(runs["reference"][0], runs["reference"][1])
    for a, b in zip(runs["reference"], runs["fast"], strict=True):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        assert any(k.endswith("running_var") for k in sa)
        for k in sa:
            torch.testing.assert_close(sb[k], sa[k], rtol=1e-4, atol=1e-5, msg=k)
