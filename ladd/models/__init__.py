"""The model zoo: a registry of the distillation field's architectures."""

from ladd.models.registry import (
    ModelSpec,
    cam_target,
    create_from_spec,
    create_model,
    default_lr,
    list_models,
    model_family,
    register_model,
)

__all__ = [
    "ModelSpec",
    "cam_target",
    "create_from_spec",
    "create_model",
    "default_lr",
    "list_models",
    "model_family",
    "register_model",
]
