import pytest
import torch
from torch import nn

from ladd.models import cam_target, create_from_spec, create_model, default_lr, list_models

EXPECTED = {f"convnet_d{d}" for d in range(1, 7)} | {"alexnet", "vgg11", "resnet18", "vit"}


def test_registry_lists_the_field_architectures():
    assert EXPECTED <= set(list_models())


@pytest.mark.parametrize("size", [32, 128])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_forward_shape_and_backward(name, size):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, image_size=size)
    x = torch.randn(2, 3, size, size, requires_grad=True)
    out = model(x)
    assert out.shape == (2, 7)
    out.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_cam_target_layer_is_a_submodule(name):
    model = create_model(name, num_classes=10, image_size=32)
    layer, reshape = cam_target(model)
    assert any(layer is m for m in model.modules())
    if name == "vit":
        assert reshape is not None
        tokens = torch.randn(2, 1 + model.grid**2, 512)
        assert reshape(tokens).shape == (2, 512, model.grid, model.grid)
    else:
        assert reshape is None


def test_convnet_linear_layer_sees_2048_features_as_in_the_paper():
    assert create_model("convnet_d3", 10, 32).classifier.in_features == 2048
    assert create_model("convnet_d5", 10, 128).classifier.in_features == 2048


def test_convnet_uses_instance_norm_as_groupnorm_one_group_per_channel():
    norms = [m for m in create_model("convnet_d3", 10, 32).modules() if isinstance(m, nn.GroupNorm)]
    assert len(norms) == 3
    assert all(n.num_groups == n.num_channels == 128 and n.affine for n in norms)


def test_avgpool_matches_torch_avgpool():
    from ladd.models.layers import AvgPool2

    x = torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(AvgPool2()(x), nn.AvgPool2d(2)(x))
    y = torch.randn(2, 4, 7, 7)
    torch.testing.assert_close(AvgPool2()(y), nn.AvgPool2d(2)(y))


def test_width_option_and_spec_round_trip():
    m = create_model("convnet_d3", 10, 32, width=16)
    assert m.classifier.in_features == 16 * 16
    again = create_from_spec(m.spec.to_dict())
    assert again.spec == m.spec
    assert sum(p.numel() for p in again.parameters()) == sum(p.numel() for p in m.parameters())


def test_unknown_model_has_a_clear_error():
    with pytest.raises(ValueError, match="unknown model 'convnet_d9'"):
        create_model("convnet_d9", 10, 32)


def test_default_learning_rates_follow_the_protocol():
    assert default_lr("convnet_d3", 32) == 0.01
    assert default_lr("convnet_d5", 128) == 0.001
    assert default_lr("vgg11", 128) == 0.0001
