"""Building models by name (timm-style registry).

`create_model("convnet_d5", num_classes=10, image_size=128)` builds the distillation-field
variant of an architecture; each model carries its `spec`, GradCAM target layer and token reshape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    """What a checkpoint needs to rebuild its model."""

    name: str
    num_classes: int
    image_size: int
    channels: int = 3
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "image_size": self.image_size,
            "channels": self.channels,
            "options": dict(self.options),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        return cls(
            name=d["name"],
            num_classes=int(d["num_classes"]),
            image_size=int(d["image_size"]),
            channels=int(d.get("channels", 3)),
            options=dict(d.get("options", {})),
        )


SMALL_IMAGE_MAX = 64  # up to this size a model is built (and trained) as its 32 px variant


def small_variant(image_size: int) -> bool:
    """Whether `image_size` gets an architecture's 32 px variant (GLaD's *CIFAR networks).

    GLaD builds separate networks for CIFAR (`ViTCIFAR`, `VGG11CIFAR`, ...) and for its 128 px
    ImageNet subsets; we pick the variant by size, and so do the default learning rates.
    """
    return image_size <= SMALL_IMAGE_MAX


@dataclass(frozen=True)
class _Entry:
    builder: Callable[..., nn.Module]
    lr_32: float  # default deployment lr at <= 64 px (the 32 px / CIFAR variant)
    lr_128: float  # default deployment lr above 64 px (the 128 px / ImageNet-subset build)
    family: str
    lr_adamw: float | None  # RDED's AdamW rate for this student (protocol rded); None: none


_REGISTRY: dict[str, _Entry] = {}


def register_model(
    name: str, *, lr_32: float, lr_128: float, family: str, lr_adamw: float | None = None
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register a builder `f(num_classes, image_size, channels, **options)`.

    lr_32 / lr_128: the SGD deployment rates (GLaD's get_eval_lrs) of the small and the 128 px
    build; lr_adamw: RDED's AdamW rate for the architecture as a student (protocol rded).
    """

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = _Entry(fn, lr_32, lr_128, family, lr_adamw)
        return fn

    return wrap


def list_models() -> list[str]:
    """Every registered architecture name, sorted."""
    return sorted(_REGISTRY)


def _entry(name: str) -> _Entry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}"
        ) from None


def create_model(
    name: str,
    num_classes: int,
    image_size: int,
    channels: int = 3,
    *,
    seed: int | None = None,
    **options: Any,
) -> nn.Module:
    """Build a registered model by name (timm's create_model); `model.spec` records how, for
    checkpoints. `list_models()` names them all.

    Names: `convnet_d1` .. `convnet_d6` (ConvNet-Dk of the distillation field: D3 at 32 px, D5
    at 128 px), `alexnet`, `vgg11`, `resnet18`, `vit` (GLaD's cross-architecture set, their
    32 px variants up to 64 px), `tv_resnet18`, `tv_resnet50`, `tv_mobilenet_v2` (torchvision's).

    `options`, per family (others are refused with a one-line ValueError naming who takes it):
      - ConvNets: `width` (channels of every conv layer, default 128: the field's; 32 or 64 make
        a CPU run several times faster), `norm` ("instance", the default: GroupNorm with one
        group per channel, as the field's ConvNet; "batch"; "none").
      - `vgg11`, `resnet18`: `norm` as above (default "instance", GLaD's).
      - `vit`: ladd.models.vit.ViTConfig's fields (patch, dim, depth, heads, mlp_dim, dropout,
        norms).

    With `seed`, the initial weights are drawn under a forked RNG seeded with it: the same seed
    gives the same weights, and the caller's global RNG is left untouched.

    Examples:
        >>> from ladd import create_model
        >>> model = create_model("convnet_d3", num_classes=10, image_size=32, width=32, norm="batch")
        >>> model.spec.options
        {'width': 32, 'norm': 'batch'}
        >>> sum(p.numel() for p in create_model("convnet_d3", 10, 32).parameters())  # width 128
        320010
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if image_size < 8:
        raise ValueError(f"image_size must be >= 8, got {image_size}")
    builder = _entry(name).builder
    if options:
        check_model_options(name, options)
    _check_model_bytes(name, num_classes, image_size, channels, options)
    if seed is None:
        model = builder(num_classes, image_size, channels, **options)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = builder(num_classes, image_size, channels, **options)
    model.spec = ModelSpec(name, num_classes, image_size, channels, dict(options))
    return model


def _on_meta(
    name: str, num_classes: int, image_size: int, channels: int, options: dict[str, Any]
) -> nn.Module | None:
    """The model built on the meta device (shapes only, no memory); None when the builder
    cannot build there (the real build then reports its own error)."""
    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            return _entry(name).builder(num_classes, image_size, channels, **options)
    except Exception:  # a bad option or size: the real build says what
        return None


def _state_nbytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def _check_model_bytes(
    name: str, num_classes: int, image_size: int, channels: int, options: dict[str, Any]
) -> None:
    """Refuse a model over LADD_MAX_MODEL_BYTES before its weights are allocated (a width, a
    class count or an image size may size it: `--width 100000`, a checkpoint's spec)."""
    from ladd.limits import current_limits

    meta = _on_meta(name, num_classes, image_size, channels, options)
    if meta is not None:
        what = f"model {name} ({num_classes:,} classes, {image_size} px"
        what += "".join(f", {k} {v}" for k, v in options.items()) + ")"
        current_limits().check_model_bytes(_state_nbytes(meta), what)


def create_for_state(
    spec: ModelSpec | dict[str, Any], shapes: dict[str, tuple[int, ...]], what: str
) -> nn.Module:
    """Build the model a file's spec describes once its weights' names and shapes (`shapes`,
    from the file) match it, so that a spec claiming 10^9 classes beside a few KB of weights is
    refused before anything is allocated; ValueError naming `what` (the file) otherwise."""
    if isinstance(spec, dict):
        try:
            spec = ModelSpec.from_dict(spec)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{what}: malformed model spec ({err})") from None
    if spec.num_classes < 1 or spec.image_size < 8 or spec.channels < 1:
        raise ValueError(f"{what}: its model spec is not buildable ({spec.to_dict()})")
    meta = _on_meta(spec.name, spec.num_classes, spec.image_size, spec.channels, spec.options)
    if meta is not None:
        want = {k: tuple(v.shape) for k, v in meta.state_dict().items()}
        missing = [k for k in want if k not in shapes]
        unexpected = [k for k in shapes if k not in want]
        wrong = [k for k in want if k in shapes and tuple(shapes[k]) != want[k]]
        if missing or unexpected or wrong:
            first = (wrong or missing or unexpected)[0]
            detail = (
                f"{first} is {tuple(shapes[first])} in the file, {want[first]} in the spec"
                if wrong
                else f"{len(missing)} weights missing, {len(unexpected)} unexpected ({first})"
            )
            raise ValueError(
                f"{what}: its weights do not fit the model its spec describes: {detail}"
            )
    return create_from_spec(spec)


def _refusal(name: str, key: str, value: Any) -> Exception | None:
    """The builder's refusal of option `key` (None when architecture `name` takes it): the
    builder is called with it on the meta device (no memory, ~ms), and a "no such keyword"
    answer is a refusal. A bad value for an option it does take is the real build's to report."""
    try:  # the caller's RNG is left as it was, whatever a builder draws
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            _entry(name).builder(10, 32, 3, **{key: value})
    except TypeError as err:
        return err if "unexpected keyword" in str(err) else None
    except ValueError as err:  # builders that check their own options (ViT's known fields)
        return err if "unknown" in str(err) and key in str(err) else None
    return None


def _takes(name: str, key: str, value: Any) -> bool:
    return _refusal(name, key, value) is None


def check_model_options(name: str, options: dict[str, Any]) -> None:
    """Raise a one-line ValueError for an option the architecture does not take, naming the
    families that take it (e.g. `width` on AlexNet: only the ConvNets have a width)."""
    for key, value in options.items():
        err = _refusal(name, key, value)
        if err is None:
            continue
        families = sorted({e.family for m, e in _REGISTRY.items() if _takes(m, key, value)})
        where = f"; {key} is an option of {', '.join(families)} models" if families else ""
        own = f": {err}" if isinstance(err, ValueError) else f" has no option {key!r}"
        raise ValueError(f"model {name!r}{own}{where}")


def supported_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options of `options` that architecture `name` takes (a cross-architecture run's
    ConvNet width reaches the ConvNets only)."""
    return {k: v for k, v in options.items() if _takes(name, k, v)}


def create_from_spec(spec: ModelSpec | dict[str, Any], *, seed: int | None = None) -> nn.Module:
    """Rebuild a model from its ModelSpec (or its dict form); `seed` as in create_model."""
    if isinstance(spec, dict):
        spec = ModelSpec.from_dict(spec)
    return create_model(
        spec.name, spec.num_classes, spec.image_size, spec.channels, seed=seed, **spec.options
    )


def default_lr(name: str, image_size: int) -> float:
    """An architecture's deployment learning rate at `image_size` (GLaD's evaluation rates).

    The cross-architecture models take GLaD's per-model rates (glad_utils.py `get_eval_lrs`);
    a distilled set's own learned lr, where it has one, is the caller's business.
    """
    e = _entry(name)
    return e.lr_32 if small_variant(image_size) else e.lr_128


def adamw_lr(name: str) -> float:
    """RDED's AdamW rate for student `name` (RDED argument.py lines 276-306, `--adamw-lr` per
    `args.stud_name`), or a ValueError saying to pass --lr: RDED leaves other students at
    --adamw-lr 0, which trains nothing."""
    lr = _entry(name).lr_adamw
    if lr is None:
        have = sorted(m for m, e in _REGISTRY.items() if e.lr_adamw is not None)
        raise ValueError(
            f"RDED gives no AdamW lr for {name!r} (it has {', '.join(have)}); pass --lr"
        )
    return lr


def model_family(name: str) -> str:
    return _entry(name).family


def cam_target(model: nn.Module) -> tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor] | None]:
    """The GradCAM target layer of a registered model and its token reshape (None for CNNs)."""
    layer = getattr(model, "cam_target_layer", None)
    if layer is None:
        raise ValueError(f"{type(model).__name__} declares no GradCAM target layer")
    return layer, getattr(model, "cam_reshape", None)
