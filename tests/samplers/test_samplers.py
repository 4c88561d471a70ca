"""ladd.samplers: the grid is the paper's S, the others are static (a spec rebuilds every box),
and every path that cuts crops (labelling, the eager and the lazy training sets, the set
file) cuts the same ones."""

from __future__ import annotations

import pytest
import torch

from ladd.cropped import CroppedInputs
from ladd.samplers import SamplerError, cut_boxes, grid_sampler, parse_sampler, sampler_names
from ladd.subsample import crop_boxes, sub_sample

SPECS = ["grid:5,0.625", "multiscale:3@0.75,4@0.5", "random:25,seed=0", "random:7,seed=3"]


def test_the_grid_sampler_is_the_papers_grid():
    s = grid_sampler(5, 0.625)
    assert s.spec == "grid:5,0.625" and s.grid == (5, 0.625) and s.num_crops == 25
    assert s.boxes(128) == crop_boxes(128, 5, 0.625)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(cut_boxes(x, s.boxes(32)), sub_sample(x, 5, 0.625))


def test_multiscale_is_the_union_of_its_grids_coarse_first():
    s = parse_sampler("multiscale:3@0.75,4@0.5")
    assert s.num_crops == 9 + 16 == 25  # as many labels as the 5 x 5 grid
    assert s.boxes(32) == crop_boxes(32, 3, 0.75) + crop_boxes(32, 4, 0.5)
    assert s.grid is None


def test_a_random_set_is_its_seed():
    a, b = parse_sampler("random:25,seed=4"), parse_sampler("random:25,seed=4")
    assert a.boxes(32) == b.boxes(32)
    assert parse_sampler("random:25,seed=5").boxes(32) != a.boxes(32)
    for top, left, h, w in a.boxes(32):  # inside the image, sides 0.5 .. 0.75 of it
        assert h == w and 16 <= h <= 24 and 0 <= top <= 32 - h and 0 <= left <= 32 - w
    assert a.spec == "random:25,seed=4"


@pytest.mark.parametrize("spec", SPECS)
def test_every_spec_rebuilds_its_sampler(spec):
    s = parse_sampler(spec)
    assert parse_sampler(s.spec) == s and s.num_crops == len(s.boxes(32))


@pytest.mark.parametrize("spec", SPECS[1:])
def test_the_lazy_inputs_cut_what_the_eager_list_holds(spec):
    x = torch.randn(3, 3, 32, 32)
    boxes = parse_sampler(spec).boxes(32)
    lazy = CroppedInputs(x, 1, 1, 0, 0.0, boxes=tuple(boxes))
    eager = torch.cat([x, cut_boxes(x, boxes).flatten(0, 1)])
    idx = torch.randperm(len(lazy), generator=torch.Generator().manual_seed(0))
    assert len(lazy) == len(eager)
    torch.testing.assert_close(lazy[idx], eager[idx])


@pytest.mark.parametrize(
    "spec", ["grid:5", "grid:0,0.5", "multiscale:3", "random:0", "random:5,min=0.9,max=0.2", "x"]
)
def test_bad_specs_are_one_line_errors(spec):
    with pytest.raises(SamplerError):
        parse_sampler(spec)


def test_registry_names():
    assert set(sampler_names()) >= {"grid", "multiscale", "random"}
