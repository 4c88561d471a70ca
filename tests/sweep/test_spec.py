"""ladd.sweep.spec: a sweep file, its grid of cells and their keys (what the experiment is,
not where it runs)."""

from __future__ import annotations

import shutil

import pytest
from sweep_grid import ROOT, grid

from ladd.sweep import SweepSpec, expand, load_spec, seed_groups


def test_spec_from_toml_resolves_paths_and_seed_groups(tmp_path):
    (tmp_path / "specs").mkdir()
    path = tmp_path / "specs" / "cross.toml"
    path.write_text(
        'sets = ["../sets/a", "/abs/b"]\nsource = "shapes"\narchs = ["convnet_d3", "alexnet"]\n'
        'labeler = "labelers/l"\nseeds = 5\nseeds_per_cell = 2\nseed = 10\nnr = [[5, 0.625], [3, 0.5]]\n'
        "epochs = 20\ngpus_per_cell = 0.5\n"
    )
    spec = load_spec(path)
    assert spec.name == "cross"  # the file's stem
    assert spec.sets == (str(tmp_path / "specs" / "../sets/a"), "/abs/b")
    assert spec.labeler == str(tmp_path / "specs" / "labelers" / "l")
    assert spec.seed_groups == ((10, 11), (12, 13), (14,))
    assert spec.nr == ((5, 0.625), (3, 0.5))
    assert spec.gpus_per_cell == 0.5
    assert load_spec(path, name="other", epochs=3).epochs == 3
    round_trip = SweepSpec.from_dict(spec.to_dict())
    assert round_trip == spec


def test_the_documented_sweep_file_reads(tmp_path):
    """docs/sweeps.md's example spec stays valid."""
    text = (ROOT / "docs" / "sweeps.md").read_text()
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "cross.toml").write_text(block)
    spec = load_spec(tmp_path / "cross.toml")
    assert spec.name == "cifar10-cross-arch" and len(spec.archs) == 5
    assert spec.seed_groups == ((0, 1, 2, 3, 4),) and spec.epochs == 1000


@pytest.mark.parametrize(
    "table, problem",
    [
        ({"sets": ["x"], "colour": "red"}, "unknown sweep field"),
        ({"sets": ["x"], "archs": ["nonet"]}, "unknown architecture"),
        ({"sets": ["x"], "modes": ["both"]}, "unknown mode"),
        ({"sets": ["x"], "gpus_per_cell": 1.5}, "gpus_per_cell"),
        ({"sets": ["x"], "seeds": 2, "seed_groups": [[0]]}, "either seeds"),
        ({"sets": []}, "at least one set"),
    ],
)
def test_spec_refuses_what_cannot_run(table, problem):
    with pytest.raises(ValueError, match=problem):
        SweepSpec.from_dict({"name": "s", **table})


def test_seed_groups_split_in_order():
    assert seed_groups(5) == ((0, 1, 2, 3, 4),)
    assert seed_groups(5, 1, base=3) == ((3,), (4,), (5,), (6,), (7,))
    with pytest.raises(ValueError):
        seed_groups(0)


def test_grid_expands_labeler_axes_only_for_modes_that_use_the_labeler(inputs):
    spec = grid(inputs, labeler_epochs=(1, 2), nr=((3, 0.5), (2, 0.75)), seed_groups=((0,), (1,)))
    cells = expand(spec)
    by_mode = {m: [c for c in cells if c.config.mode == m] for m in spec.modes}
    assert len(by_mode["baseline"]) == 2 * 2  # archs x seed groups
    assert len(by_mode["ladd"]) == 2 * 2 * 2 * 2  # labeler epochs x N/R x archs x seed groups
    assert {(c.input.labeler_epoch, c.input.n, c.input.r) for c in by_mode["ladd"]} == {
        (e, n, r) for e in (1, 2) for n, r in ((3, 0.5), (2, 0.75))
    }
    assert all(not c.input.augmented for c in by_mode["baseline"])
    assert len({c.key for c in cells}) == len(cells)
    assert all(c.config.model_options == {"width": 8} for c in cells)


def test_cell_keys_follow_the_experiment_not_where_it_runs(inputs, tmp_path):
    keys = [c.key for c in expand(grid(inputs))]
    assert keys == [c.key for c in expand(grid(inputs))]  # stable
    moved = grid(inputs, device="auto", gpus_per_cell=0.25, max_retries=0, name="other", threads=2)
    assert [c.key for c in expand(moved)] == keys
    assert not set(keys) & {c.key for c in expand(grid(inputs, epochs=5))}
    # the same bytes elsewhere are the same experiment; other bytes are another one
    shutil.copytree(inputs / "rr", tmp_path / "copy")
    copied = grid(inputs, sets=(str(tmp_path / "copy"),))
    assert [c.key for c in expand(copied)] == keys
    images = tmp_path / "copy" / "images_best.pt"
    images.write_bytes(images.read_bytes() + b"\0")
    assert not set(keys) & {c.key for c in expand(copied)}


def test_a_plain_set_in_ladd_mode_needs_a_labeler(inputs):
    with pytest.raises(ValueError, match="needs dense labels"):
        expand(grid(inputs, labeler=None, labeler_epochs=(), nr=()))
    with pytest.raises(ValueError, match="no checkpoint at epoch"):
        expand(grid(inputs, labeler_epochs=(7,)))
