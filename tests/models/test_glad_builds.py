"""The cross-architecture models are GLaD's builds.

GLaD = github.com/GeorgeCazenavette/glad at fe62863 (`networks/*.py`, `utils.py` get_network).
Figures below are derived by hand from GLaD's layer shapes, never by running its code.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ladd.models import cam_target, create_model
from ladd.models.vit import Attention, patchify


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- parameter counts, 10 classes ------------------------------------------------------------


def test_vit_128px_has_glads_16176650_parameters():
    """GLaD networks/vit.py with utils.py:220-230 (patch 16, dim 512, depth 10, heads 8,
    mlp_dim 512, dim_head 64 by default, no LayerNorm: lines 19, 22, 109 are commented out):
      patch embedding Linear(3*16*16 = 768, 512)        768*512 + 512   =    393,728
      position embedding (64 patches + 1) x 512                         =     33,280
      class token 1 x 512                                               =        512
      per layer: to_qkv Linear(512, 3*8*64, bias=False) 512*1536        =    786,432
                 to_out Linear(512, 512)                262,144 + 512   =    262,656
                 FeedForward Linear(512,512) x 2        2 * 262,656     =    525,312
                 -> 1,574,400 per layer, x 10                           = 15,744,000
      mlp_head Linear(512, 10)                          5,120 + 10      =      5,130
      total                                                             = 16,176,650
    (GLaD networks/vit.py with its LayerNorms commented out, as built there.)"""
    assert _count(create_model("vit", 10, 128)) == 16_176_650


def test_vit_32px_is_glads_vitcifar_with_9523722_parameters():
    """GLaD networks/vit_cifar.py with utils.py:239-249 (patch 4, dim 512, depth 6, heads 8,
    mlp_dim 512, dim_head 64; PreNorm LayerNorm in both branches, line 19, and a LayerNorm in
    mlp_head, line 108):
      patch embedding Linear(3*4*4 = 48, 512)           48*512 + 512    =     25,088
      position embedding (64 patches + 1) x 512                         =     33,280
      class token                                                       =        512
      per layer: 1,574,400 as at 128 px + 2 LayerNorm(512) of 1,024    =  1,576,448
                 x 6                                                    =  9,458,688
      mlp_head LayerNorm(512) 1,024 + Linear(512, 10) 5,130             =      6,154
      total                                                             =  9,523,722"""
    assert _count(create_model("vit", 10, 32)) == 9_523_722


# VGG11 convs + GroupNorm(c, c) (weight and bias per channel), GLaD networks/vgg.py:8, 34-36:
#   3->64      1,728 + 64 + 128          =     1,920
#   64->128    73,728 + 128 + 256        =    74,112
#   128->256   294,912 + 256 + 512       =   295,680
#   256->256   589,824 + 256 + 512       =   590,592
#   256->512   1,179,648 + 512 + 1,024   = 1,181,184
#   512->512   2,359,296 + 512 + 1,024   = 2,360,832, three of them = 7,082,496
#   features total                                                    = 9,225,984
_VGG11_FEATURES = 9_225_984


def test_vgg11_128px_has_glads_maxpool7_head():
    """GLaD networks/vgg.py:18, 38: AdaptiveMaxPool2d((7, 7)) after the features, then
    Linear(512*7*7 = 25,088, 10) = 250,890; with the features 9,225,984 -> 9,476,874."""
    model = create_model("vgg11", 10, 128)
    assert _count(model) == _VGG11_FEATURES + 25_088 * 10 + 10 == 9_476_874
    pools = [m for m in model.modules() if isinstance(m, nn.AdaptiveMaxPool2d)]
    assert len(pools) == 1 and tuple(pools[0].output_size) == (7, 7)
    assert model.classifier.in_features == 512 * 7 * 7


def test_vgg11_32px_is_glads_vgg11cifar():
    """GLaD networks/vgg_cifar.py:15: Linear(512, 10) = 5,130 on the 1 x 1 map -> 9,231,114."""
    model = create_model("vgg11", 10, 32)
    assert _count(model) == _VGG11_FEATURES + 5_130 == 9_231_114
    assert not any(isinstance(m, nn.AdaptiveMaxPool2d) for m in model.modules())


def test_vgg11_uses_instance_norm_as_groupnorm_one_group_per_channel():
    """GLaD networks/vgg.py:35: nn.GroupNorm(x, x, affine=True) after every conv."""
    norms = [m for m in create_model("vgg11", 10, 32).modules() if isinstance(m, nn.GroupNorm)]
    assert len(norms) == 8
    assert all(n.num_groups == n.num_channels and n.affine for n in norms)


# AlexNet convs, GLaD networks/alexnet.py:9-21 (same in alexnet_cifar.py):
#   3->128 k5    9,600 + 128    =     9,728
#   128->192 k5  614,400 + 192  =   614,592
#   192->256 k3  442,368 + 256  =   442,624
#   256->192 k3  442,368 + 192  =   442,560
#   192->192 k3  331,776 + 192  =   331,968
#   total                       = 1,841,472
@pytest.mark.parametrize(
    ("size", "head_in"),
    [(128, 192 * 16 * 16), (32, 192 * 4 * 4)],  # alexnet.py:23 (192*s/8*s/8), alexnet_cifar.py:21
)
def test_alexnet_matches_glad(size, head_in):
    """128 px: 1,841,472 + 49,152*10 + 10 = 2,333,002; 32 px: 1,841,472 + 30,730 = 1,872,202."""
    model = create_model("alexnet", 10, size)
    assert model.classifier.in_features == head_in
    assert _count(model) == 1_841_472 + head_in * 10 + 10
    assert not any(isinstance(m, (nn.GroupNorm, nn.BatchNorm2d)) for m in model.modules())


@pytest.mark.parametrize("size", [32, 128])
def test_resnet18_matches_glad(size):
    """GLaD networks/resnet.py:20-47, 85-99 (ResNet18, norm instancenorm) and resnet_cifar.py
    (ResNet18CIFAR): bias-free convs, GroupNorm(c, c) of 2c parameters, 1x1 projection
    shortcuts where the stride or width changes.
      stem 3->64 3x3: 1,728 + GN 128                                   =      1,856
      layer1: 2 blocks x (2 x 36,864 + 2 x 128)                         =    147,968
      layer2: 73,728 + 147,456 + 8,192 + 3 x 256 = 230,144; + 295,424   =    525,568
      layer3: 294,912 + 589,824 + 32,768 + 3 x 512 = 919,040; + 1,180,672 =  2,099,712
      layer4: 1,179,648 + 2,359,296 + 131,072 + 3 x 1,024 = 3,673,088;
              + 2 x (2,359,296 + 1,024) = 4,720,640                     =  8,393,728
      classifier Linear(512, 10)                                        =      5,130
      total                                                             = 11,173,962"""
    model = create_model("resnet18", 10, size)
    assert _count(model) == 11_173_962
    assert model(torch.randn(1, 3, size, size)).shape == (1, 10)


# --- the ViT's build choices ------------------------------------------------------------------


def test_vit_128px_has_no_layernorm_and_32px_has_one_per_branch_plus_head():
    """GLaD vit.py:19, 22, 109 comment the norms out; vit_cifar.py:19, 108 keep them."""
    big = create_model("vit", 10, 128)
    assert not any(isinstance(m, nn.LayerNorm) for m in big.modules())
    small = create_model("vit", 10, 32)
    assert sum(isinstance(m, nn.LayerNorm) for m in small.modules()) == 2 * 6 + 1


@pytest.mark.parametrize("size", [32, 128])
def test_vit_qkv_has_no_bias_and_tokens_are_standard_normal(size):
    """GLaD vit.py:48 (bias = False), :99-100 (torch.randn for positions and class token)."""
    model = create_model("vit", 10, size, seed=0)
    assert all(blk.attn.qkv.bias is None for blk in model.blocks)
    pos = model.pos.detach()
    assert pos.shape == (1, model.grid**2 + 1, 512)
    # randn: mean ~0, std ~1 over 33,280 draws (a zeros or 0.02-std init fails this).
    assert abs(pos.mean().item()) < 0.05 and 0.95 < pos.std().item() < 1.05
    assert 0.8 < model.cls.detach().std().item() < 1.2


def test_vit_attention_is_glads_softmax_of_scaled_dot_products():
    """GLaD vit.py:55-65: q, k, v = chunks of to_qkv(x), heads split as 'b n (h d) -> b h n d',
    softmax(q k^T * dim_head^-0.5) v, heads merged back, then to_out."""
    torch.manual_seed(0)
    attn = Attention(dim=32, heads=4, dim_head=8, dropout=0.0).eval()
    x = torch.randn(2, 5, 32)
    q, k, v = attn.qkv(x).chunk(3, dim=-1)

    def heads(t):  # (B, N, h*d) -> (B, h, N, d)
        return t.reshape(2, 5, 4, 8).transpose(1, 2)

    q, k, v = heads(q), heads(k), heads(v)
    weights = torch.softmax(q @ k.transpose(-1, -2) * 8**-0.5, dim=-1)
    expected = attn.proj((weights @ v).transpose(1, 2).reshape(2, 5, 32))
    torch.testing.assert_close(attn(x), expected, rtol=1e-5, atol=1e-6)


def test_vit_patches_are_flattened_row_by_row_with_channels_last():
    """GLaD vit.py:95: Rearrange('b c (h p1) (w p2) -> b (h w) (p1 p2 c)')."""
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    tokens = patchify(x, 4)  # (2, 4, 48)
    assert tokens.shape == (2, 4, 48)
    # Patch 1 is the top-right one (raster order); its element (p1=2, p2=3, c=1).
    assert tokens[1, 1, (2 * 4 + 3) * 3 + 1] == x[1, 1, 2, 4 + 3]
    # Patch 2 is the bottom-left one; element (p1=0, p2=1, c=2).
    assert tokens[0, 2, (0 * 4 + 1) * 3 + 2] == x[0, 2, 4, 1]


def test_vit_dropout_is_after_projections_and_on_embeddings_not_on_attention_weights():
    """GLaD vit.py:31, 33 (MLP), :52 (after to_out), :101 (emb_dropout) with p 0.1 from
    utils.py:228-229; its attention weights (line 61) are not dropped. With every nn.Dropout
    set to p 0, training mode must equal eval mode."""
    model = create_model("vit", 10, 32, seed=0)
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 1 + 6 * 3 and all(d.p == pytest.approx(0.1) for d in drops)
    for d in drops:
        d.p = 0.0
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        train_out = model.train()(x)
        eval_out = model.eval()(x)
    torch.testing.assert_close(train_out, eval_out)


def test_vit_dropout_option_sets_emb_dropout_too_unless_given():
    m = create_model("vit", 10, 32, dropout=0.0)
    assert all(d.p == 0.0 for d in m.modules() if isinstance(d, nn.Dropout))
    m = create_model("vit", 10, 32, dropout=0.0, emb_dropout=0.2)
    assert m.drop.p == pytest.approx(0.2)
    with pytest.raises(ValueError, match="unknown ViT options"):
        create_model("vit", 10, 32, widht=3)


def test_vit_uses_the_class_token_for_the_prediction():
    """GLaD vit.py:124 (pool 'cls'): after the last block only token 0 reaches the classifier,
    so shifting the patch tokens there leaves the logits alone and shifting token 0 does not."""
    model = create_model("vit", 10, 128, seed=0).eval()
    x = torch.randn(1, 3, 128, 128)

    def logits_with(shift: slice) -> torch.Tensor:
        def hook(module, inputs, out):
            out = out.clone()
            out[:, shift] += 5.0
            return out

        handle = model.blocks[-1].register_forward_hook(hook)
        try:
            with torch.no_grad():
                return model(x)
        finally:
            handle.remove()

    with torch.no_grad():
        plain = model(x)
    torch.testing.assert_close(logits_with(slice(1, None)), plain)
    assert not torch.allclose(logits_with(slice(0, 1)), plain)


# --- GradCAM and the stacked (vmap) trainer at 128 px -------------------------------------------


@pytest.mark.parametrize("name", ["vit", "vgg11"])
def test_cam_target_and_token_reshape_work_at_128px(name):
    pytest.importorskip("pytorch_grad_cam")
    from ladd.cam import compute_cam

    model = create_model(name, 4, 128, seed=0)
    layer, reshape = cam_target(model)
    assert any(layer is m for m in model.modules())
    if name == "vit":
        assert reshape is not None and model.grid == 8
    else:
        assert isinstance(layer, nn.ReLU) and reshape is None
    x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    maps = compute_cam(model, x, targets=[1])
    assert maps.shape == (1, 128, 128)
    assert 0.0 <= maps.min() and maps.max() <= 1.0 and maps.max() > 0.0


@pytest.mark.parametrize(
    ("name", "options"),
    # Dropout draws differ by design (as in test_fast); two ViT layers show what ten would.
    [("vit", {"dropout": 0.0, "depth": 2}), ("vgg11", {})],
)
def test_stacked_step_matches_each_model_at_128px(name, options):
    """The stacked trainer runs the models under torch.func.vmap; at 128 px the ViT has no
    LayerNorm and VGG11 its AdaptiveMaxPool2d(7, 7): same losses and gradients as each seed's own
    model (float64, as tests/trainers/test_stacked.py's cross-architecture test)."""
    from ladd.trainers.stacking import stack_models, stacked_loss
    from ladd.training import soft_cross_entropy

    models = [create_model(name, 4, 128, seed=s, **options).double() for s in (0, 1)]
    base, params, buffers = stack_models(models)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 1, 3, 128, 128, generator=g, dtype=torch.float64)  # (seeds, B, C, H, W)
    y = torch.softmax(torch.randn(2, 1, 4, generator=g, dtype=torch.float64), dim=-1)
    loss, per_seed = stacked_loss(base, params, buffers, x, y)
    loss.backward()
    for s, model in enumerate(models):
        ref = soft_cross_entropy(model(x[s]), y[s])
        ref.backward()
        torch.testing.assert_close(per_seed[s], ref.detach(), rtol=1e-10, atol=1e-12)
        for pname, p in model.named_parameters():
            torch.testing.assert_close(params[pname].grad[s], p.grad, rtol=1e-8, atol=1e-12)
