"""A sweep's soft-label stores (issue 36): a `soft_labels` table pairs an image-folder set with
its store; cells of mode "store" replay it, the set's other cells keep their keys, and a
pairing that cannot run is refused when the spec is made."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ladd.store import Workspace
from ladd.stores import open_store
from ladd.sweep import SweepSpec, expand, load_spec, load_sweep, run_sweep

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stores"))
import upstream_stores as us  # noqa: E402

SIZE = 16


@pytest.fixture(scope="module")
def folder_and_store(tmp_path_factory) -> tuple[Path, Path]:
    """10 classes x 2 images of 16 px (SRe2L's names) and an SRe2L store of 2 epochs over them
    (batches of 8), as tests/stores writes them."""
    root = tmp_path_factory.mktemp("sweep-store")
    us.write_images(root / "imgs", 10, 2, SIZE)
    us.write_sre2l(root / "store", 20, 10, epochs=2, batch=8, size=SIZE)
    return root / "imgs", root / "store"


def _spec(imgs: Path, store: Path | None, **changes) -> SweepSpec:
    table = {
        "name": "stores",
        "sets": [str(imgs)],
        "source": "shapes",
        "archs": ["convnet_d3"],
        "modes": ["baseline", "store"] if store is not None else ["baseline"],
        "seed_groups": [[0]],
        "epochs": 1,
        "batch_size": 8,
        "width": 4,
        "device": "cpu",
        "threads": 1,
    }
    if store is not None:
        table["soft_labels"] = {str(imgs): str(store)}
    return SweepSpec.from_dict({**table, **changes})


def test_a_paired_set_gets_a_store_cell_and_keeps_its_other_keys(folder_and_store):
    imgs, store = folder_and_store
    cells = expand(_spec(imgs, store))
    assert [c.config.mode for c in cells] == ["baseline", "store"]
    base, replay = cells
    assert base.input.store_path is None
    assert replay.input.store_path == str(store.resolve())
    assert replay.input.store_digest == open_store(store).digest()
    assert "store" in replay.label
    # the baseline cell is the same experiment as in a sweep without the table
    assert base.key == expand(_spec(imgs, None))[0].key
    # temperatures name the store cell, nothing else
    warm = expand(_spec(imgs, None, modes=["baseline", "store"],
                        soft_labels={str(imgs): {"store": str(store), "label_temperature": 4}}))  # fmt: skip
    assert warm[0].key == base.key and warm[1].key != replay.key
    assert warm[1].input.label_temperature == 4.0
    # strategy axes do not multiply the store's cells (it replays its own loss)
    crossed = expand(_spec(imgs, store, loss_fns=["soft_ce", "kl"]))
    assert [c.config.mode for c in crossed].count("store") == 1


def test_a_sweep_file_pairs_sets_with_stores_by_relative_paths(tmp_path):
    (tmp_path / "specs").mkdir()
    path = tmp_path / "specs" / "paired.toml"
    path.write_text(
        'sets = ["../sets/sre2l", "../sets/plain"]\nmodes = ["baseline"]\n'
        '[soft_labels]\n"../sets/sre2l" = { store = "../stores/sre2l", student_temperature = 1 }\n'
    )
    spec = load_spec(path)
    (pairing,) = spec.soft_labels
    assert pairing.set == spec.sets[0] == str(tmp_path / "specs" / "../sets/sre2l")
    assert pairing.store == str(tmp_path / "specs" / "../stores/sre2l")
    assert (pairing.label_temperature, pairing.student_temperature) == (None, 1.0)
    assert SweepSpec.from_dict(spec.to_dict()) == spec
    assert spec.to_dict()["soft_labels"] == {
        spec.sets[0]: {"store": pairing.store, "student_temperature": 1.0}
    }


@pytest.mark.parametrize(
    "table, problem",
    [
        ({"soft_labels": {"elsewhere": "s"}}, "not one of the sweep's sets"),
        ({"modes": ["baseline", "store"]}, "mode 'store' on 'x', a set without a soft-label store"),
        ({"soft_labels": {"x": "s"}, "modes": ["store"], "sets": ["x", "y"]}, "on 'y'"),
        ({"soft_labels": {"x": {"path": "s"}}}, "unknown key"),
        ({"soft_labels": {"x": {"store": "s", "label_temperature": 0}}}, "must be > 0"),
        ({"soft_labels": {"x": "s", "./x": "t"}}, "two stores"),
    ],
)
def test_a_pairing_that_cannot_run_is_refused_in_one_line(table, problem):
    with pytest.raises(ValueError, match=problem) as err:
        SweepSpec.from_dict({"name": "s", "sets": ["x"], **table})
    assert "\n" not in str(err.value)


def test_a_store_and_a_baseline_cell_run_and_record_the_store(folder_and_store, tmp_path):
    imgs, store = folder_and_store
    ws = Workspace(tmp_path / "ws")
    spec = _spec(imgs, store)
    result = run_sweep(spec, ws, executor="serial")
    assert result.status == "done"
    digest = open_store(store).digest()
    runs = {r.config["train"]["mode"]: r for r in ws.db.list_runs("train")}
    assert set(runs) == {"baseline", "store"} and all(r.status == "done" for r in runs.values())
    facts = runs["store"].config["plan"]["set"]["soft_labels"]
    assert facts["digest"] == digest and facts["family"] == "sre2l"
    assert facts["path"] == str(store.resolve())
    assert runs["store"].config["sweep"]["input"]["store_digest"] == digest
    assert runs["store"].config["train"]["batch_size"] == 8  # the store's
    assert not runs["baseline"].config["plan"]["set"].get("soft_labels")
    cells = {c.mode: c for c in load_sweep(ws, spec.name).cells}
    assert cells["store"].store_digest == digest and cells["baseline"].store is None
    assert run_sweep(spec, ws, executor="serial").ran == 0  # both found again
