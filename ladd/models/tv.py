"""torchvision's own ResNet-18, ResNet-50 and MobileNet-V2, for ImageNet-1K evaluation.

SRe2L, RDED and CDA evaluate their ImageNet-1K sets on torchvision's networks at 224 px:
ResNet-18 with batch norm (7x7 stride-2 stem and max-pool), ResNet-50 and MobileNet-V2. The
field's ResNet-18 in resnet.py is another network (instance norm, 3x3 stride-1 stem, no
max-pool), so these are registered beside it as "tv_resnet18", "tv_resnet50" and
"tv_mobilenet_v2".

Each is built by torchvision's own builder (`torchvision.models.resnet18(weights=None,
num_classes=K)`, ...) and returned as torchvision's class; the only addition is the
`cam_target_layer` reference the registry's `cam_target` reads. The state-dict keys are
torchvision's, so a user's torchvision checkpoint loads into them with `load_state_dict` (read
it with weights_only=True), or with `load_torchvision_checkpoint` below, which also takes
common training scripts' layouts.

There is one build at every size (no 32 px variant): the network downsamples by 32 and ends in
an adaptive average pool, so at 32 px the last stage's map is 1 x 1. torchvision is imported by
the builders, not here: `import ladd.models` does not pay for it (about a second).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ladd.models.registry import create_model, list_models, model_family, register_model


def _with_cam_target(model: nn.Module, layer: nn.Module) -> nn.Module:
    """`model` with `model.cam_target_layer` referring to its submodule `layer`.

    A plain attribute, set past nn.Module.__setattr__: that would register the layer a second
    time as a child, giving it a second set of state-dict keys. copy.deepcopy and pickling keep
    the reference on the copy's own layer (one memo for the whole object graph); state_dict,
    load_state_dict, functional_call and .to() work on the modules and never see it.
    """
    object.__setattr__(model, "cam_target_layer", layer)
    return model


def _with_channels(conv: nn.Conv2d, channels: int) -> nn.Conv2d:
    """`conv` rebuilt for `channels` inputs: same outputs, kernel, stride, padding, dilation,
    groups and bias, drawn with torchvision's init for these convs (kaiming normal, fan out)."""
    new = nn.Conv2d(
        channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    )
    nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
    if new.bias is not None:
        nn.init.zeros_(new.bias)
    return new


# lr_32 = lr_128 = 0.001: the registry's rate for its SGD protocols, as GLaD's ResNet18
# (glad_utils.py get_eval_lrs); the SRe2L/RDED recipe sets its own optimiser and lr.
# image_size is unused (see the module docstring). With channels != 3 the first conv is replaced
# by one of the same hyper-parameters taking `channels` inputs.


@register_model("tv_resnet18", lr_32=0.001, lr_128=0.001, family="torchvision", lr_adamw=0.001)
def tv_resnet18(num_classes: int, image_size: int, channels: int = 3) -> nn.Module:
    from torchvision.models import resnet18

    model = resnet18(weights=None, num_classes=num_classes)
    if channels != 3:
        model.conv1 = _with_channels(model.conv1, channels)
    return _with_cam_target(model, model.layer4[-1])


@register_model("tv_resnet50", lr_32=0.001, lr_128=0.001, family="torchvision", lr_adamw=0.001)
def tv_resnet50(num_classes: int, image_size: int, channels: int = 3) -> nn.Module:
    from torchvision.models import resnet50

    model = resnet50(weights=None, num_classes=num_classes)
    if channels != 3:
        model.conv1 = _with_channels(model.conv1, channels)
    return _with_cam_target(model, model.layer4[-1])


@register_model("tv_mobilenet_v2", lr_32=0.001, lr_128=0.001, family="torchvision", lr_adamw=0.0025)
def tv_mobilenet_v2(num_classes: int, image_size: int, channels: int = 3) -> nn.Module:
    from torchvision.models import mobilenet_v2

    model = mobilenet_v2(weights=None, num_classes=num_classes)
    if channels != 3:
        model.features[0][0] = _with_channels(model.features[0][0], channels)
    return _with_cam_target(model, model.features[-1])  # the last 1x1 conv block, 1280 maps


def load_torchvision_checkpoint(
    name: str, path: str | Path, num_classes: int, image_size: int
) -> nn.Module:
    """Build torchvision model `name` and load the local checkpoint file `path` into it.

    The file is read with torch.load(weights_only=True): tensors only, no code runs. It holds a
    state_dict, bare or under "state_dict" or "model" (training scripts' layouts); a leading
    "module." (DDP) is stripped. A file that does not fit raises a ValueError whose first line
    names the file and what does not match.
    """
    if model_family(name) != "torchvision":  # an unknown name: the registry's own error
        ours = [m for m in list_models() if model_family(m) == "torchvision"]
        raise ValueError(f"{name!r} is not a torchvision model; use one of {', '.join(ours)}")
    from ladd.limits import InputLimitError
    from ladd.torchfiles import TorchFileError, load_torch_file

    try:  # torch.load(weights_only=True), the file's claims bounded by what it holds
        obj = load_torch_file(path)
    except (OSError, TorchFileError, InputLimitError):  # errors that name the path themselves
        raise
    except Exception as err:  # weights_only refusing a pickled object, or not a torch file
        raise ValueError(
            f"{path}: torch.load(weights_only=True) cannot read it ({type(err).__name__}): "
            "not a checkpoint of tensors only\nsave the model's state_dict alone "
            "(a training checkpoint's extras, e.g. argparse args, are refused)"
        ) from err
    state = obj
    if isinstance(obj, dict):
        state = next((obj[k] for k in ("state_dict", "model") if isinstance(obj.get(k), dict)), obj)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(
            f"{path}: no state_dict in it (tensors by name, bare or under 'state_dict' or 'model')"
        )
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model = create_model(name, num_classes, image_size)
    own = model.state_dict()
    # BatchNorm fills in a missing num_batches_tracked (checkpoints saved before torch 0.4.1)
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = [
            f"{len(ks)} keys {what} ({ks[0]}, ...)"
            for what, ks in [("missing", missing), ("unexpected", unexpected)]
            if ks
        ]
        raise ValueError(f"{path}: not a {name} state_dict: {', '.join(parts)}")
    head = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    for key, value in state.items():
        want = own[key].shape
        if value.shape == want:
            continue
        if key.startswith(head + "."):
            raise ValueError(
                f"{path}: its classifier ({head}) has {value.shape[0]} outputs, "
                f"the set has {num_classes} classes"
            )
        raise ValueError(f"{path}: {key} is {tuple(value.shape)} there, {tuple(want)} in {name}")
    model.load_state_dict(state)
    return model
