"""ladd.dsa against DiffAugment as the field ships it, draw for draw.

The upstream code is DD-Ranking's `ddranking/aug/dsa.py` (ddranking 0.2.0 on PyPI), the
DatasetCondensation `DiffAugment` (VICO-UoE/DatasetCondensation utils.py:495-650 at 53f63a6;
MTT's utils.py:521-676 at 50dccea is the same code) wrapped in a class. ddranking 0.2.0 pins
numpy<2, so it cannot be installed beside this project's numpy; `make` installs it without its
dependencies into `.venv/upstream` (requirements-upstream.txt) and these tests load that one
module file by path (it imports only torch, numpy and torch.nn.functional). Without it they skip.

Upstream draws from torch's global RNG; ladd draws from a passed-in generator. A CPU generator
seeded with s gives the same stream as `torch.manual_seed(s)`, so each op is compared on the
same draws: color, cutout, flip and scale must give the same images; crop and rotate give
upstream's images mirrored (ladd shifts by -t where upstream shifts by +t, and rotates the
other way), which the tests undo by mirroring the input and the output.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from ladd.dsa import DSA_OPS, DSAConfig, apply_op, batched_dsa, cutout, cutout_centres, dsa

UPSTREAM = Path(sys.prefix) / "upstream" / "ddranking" / "aug" / "dsa.py"


def _upstream() -> ModuleType:
    if not UPSTREAM.is_file():
        pytest.skip(f"ddranking 0.2.0 is not installed under {UPSTREAM.parent.parent.parent}")
    spec = importlib.util.spec_from_file_location("ddranking_aug_dsa", UPSTREAM)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _params() -> dict:
    # ddranking's DSA params, as DatasetCondensation's ParamDiffAug sets them (utils.py:474-485)
    return {
        "crop": 0.125,
        "scale": 1.2,
        "rotate": 15.0,
        "cutout": 0.5,
        "flip": 0.5,
        "brightness": 1.0,
        "saturation": 2.0,
        "contrast": 0.5,
        "siamese": False,
        "latestseed": -1,
    }


def _theirs(op: str, x: torch.Tensor, seed: int) -> torch.Tensor:
    aug = _upstream().DSA(_params(), seed=-1, aug_mode="S")  # seed -1: per-sample draws
    aug.params["siamese"] = False
    aug.params["latestseed"] = -1
    fn = getattr(aug, f"rand_{op}")
    torch.manual_seed(seed)
    return fn(x)


def _mirror(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    return x.flip(dims)


@pytest.mark.parametrize("size", [16, 17, 32])
@pytest.mark.parametrize("op", DSA_OPS)
def test_each_op_computes_what_diffaugment_computes_on_the_same_draws(op, size) -> None:
    x = torch.randn(16, 3, size, size, generator=torch.Generator().manual_seed(7))
    seed = 11
    ours = lambda v: apply_op(v, op, torch.Generator().manual_seed(seed), DSAConfig())  # noqa: E731
    if op == "crop":  # ladd shifts by -t: mirror rows and columns around upstream's +t
        got = _mirror(_theirs(op, _mirror(x, (2, 3)), seed), (2, 3))
        torch.testing.assert_close(ours(x), got, rtol=0, atol=0)
    elif op == "rotate":  # ladd rotates by -angle: conjugate upstream's rotation by a flip
        got = _mirror(_theirs(op, _mirror(x, (3,)), seed), (3,))
        torch.testing.assert_close(ours(x), got, rtol=1e-5, atol=1e-5)
    else:
        torch.testing.assert_close(ours(x), _theirs(op, x, seed), rtol=1e-6, atol=1e-6)


def test_cutout_centres_are_drawn_as_diffaugment_draws_them() -> None:
    """rand_cutout draws the centre from torch.randint(0, H + (1 - side % 2)) (DatasetCondensation
    utils.py:624, MTT utils.py:650, ddranking/aug/dsa.py:126): 0..H for an even side."""
    assert cutout_centres(32, 16) == 33 and cutout_centres(17, 9) == 17
    x = torch.ones(4096, 1, 4, 4)  # side 2 of 4: centres 0..4, a centre of 4 zeroes row 3 only
    y = cutout(x, torch.Generator().manual_seed(0))
    rows = (y[:, 0] == 0).any(2)  # (B, 4): the rows each hole covers
    last_only = (rows == torch.tensor([False, False, False, True])).all(1).float().mean()
    first_only = (rows == torch.tensor([True, False, False, False])).all(1).float().mean()
    # each of the 5 centre rows comes up 1/5 of the time (sd ~0.006 over 4096 draws); the old
    # 0..H-1 draw never left a hole in the last row alone
    assert abs(float(last_only) - 0.2) < 0.03 and abs(float(first_only) - 0.2) < 0.03


def test_the_batched_form_reaches_the_last_centre_too() -> None:
    x = torch.ones(2, 1, 4, 4)
    u = torch.zeros(2, 10)
    u[:, 5] = 0.99  # the largest uniform: centre row 4 of 0..4 (side 2)
    code = torch.full((2,), DSA_OPS.index("cutout"))
    y = batched_dsa(x, code, u, DSAConfig())
    assert (y[:, 0, 3] == 0).any() and (y[:, 0, :3] == 1).all()


def test_one_dsa_call_picks_the_op_diffaugment_picks() -> None:
    """DiffAugment's mode S draws the op index with torch.randint(0, len(ops), (1,)) before the
    op's own draws (DatasetCondensation utils.py:508-509): same seed, same op, same images for
    the ops computed identically."""
    mod = _upstream()
    x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    same = 0
    for seed in range(12):
        torch.manual_seed(seed)
        pick = DSA_OPS[int(torch.randint(0, len(DSA_OPS), size=(1,)).item())]
        if pick in ("crop", "rotate"):
            continue
        aug = mod.DSA(_params(), seed=-1, aug_mode="S")
        aug.transform_funcs = [getattr(aug, f"rand_{o}") for o in DSA_OPS]  # their strategy order
        torch.manual_seed(seed)
        theirs = aug(x)
        torch.testing.assert_close(dsa(x, torch.Generator().manual_seed(seed)), theirs)
        same += 1
    assert same >= 4
