"""The model zoo: a registry of the distillation field's architectures.

The registry imports no architecture; this package imports them all, and each registers itself
(timm's layout), so `from ladd.models import create_model` knows every name.
"""

from ladd.models import alexnet, convnet, resnet, tv, vgg, vit  # noqa: F401  (they register)
from ladd.models.registry import (
    ModelSpec,
    adamw_lr,
    cam_target,
    check_model_options,
    create_for_state,
    create_from_spec,
    create_model,
    default_lr,
    list_models,
    model_family,
    register_model,
    small_variant,
    supported_options,
)

__all__ = [
    "ModelSpec",
    "cam_target",
    "check_model_options",
    "create_for_state",
    "create_from_spec",
    "create_model",
    "adamw_lr",
    "default_lr",
    "list_models",
    "model_family",
    "register_model",
    "small_variant",
    "supported_options",
]
