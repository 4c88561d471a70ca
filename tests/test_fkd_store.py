"""ladd.fkd_store: our FKD-style store in SRe2L's layout (VILA-Lab/SRe2L @ 8d00cba), read back
weights_only, and LADD's training set with its crops in place of the grid (CPU, shapes)."""

from __future__ import annotations

import json

import pytest
import torch

from ladd.fkd_store import (
    COORD_BYTES,
    StoreConfig,
    cut_stored,
    draw_crop,
    read_store,
    store_label_bytes,
    store_training_data,
    write_store,
)
from ladd.labeler import Labeler, LabelerMeta
from ladd.models import create_model
from ladd.sets import random_real

pytestmark = pytest.mark.usefixtures("one_thread")


def _labeler(ds) -> Labeler:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = create_model("convnet_d3", 10, 32, width=8).eval()
    meta = LabelerMeta(
        arch="convnet_d3",
        spec=model.spec.to_dict(),
        source="shapes",
        epoch=10,
        mean=ds.mean,
        std=ds.std,
        class_names=ds.class_names,
        seed=0,
        test_accuracy=0.0,
        image_size=32,
    )
    return Labeler(model, meta)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    ds = random_real("shapes", 2, seed=0, limit_per_class=10)  # 20 images
    lab = _labeler(ds)
    root = tmp_path_factory.mktemp("fkd") / "store"
    summary = write_store(ds, lab, root, StoreConfig(epochs=3, batch_size=8), device="cpu")
    return ds, lab, root, summary


def test_the_folder_is_sre2ls_layout(store):
    """generate_soft_label.py:222-224 saves [coords, flip, mix_index, mix_lam, mix_bbox,
    soft_label] as epoch_{e}/batch_{b}.tar; images as new{c:03d}/class{c:03d}_id{i:03d}."""
    ds, _, root, summary = store
    assert sorted(p.name for p in (root / "labels").iterdir()) == ["epoch_0", "epoch_1", "epoch_2"]
    assert sorted(p.name for p in (root / "labels" / "epoch_0").iterdir()) == [
        "batch_0.tar",
        "batch_1.tar",
        "batch_2.tar",
    ]  # 20 images in batches of 8: 8, 8, 4
    pngs = sorted(p.relative_to(root / "images").as_posix() for p in root.rglob("*.png"))
    assert len(pngs) == 20 and pngs[0] == "new000/class000_id000.png"
    batch = torch.load(root / "labels" / "epoch_1" / "batch_2.tar", weights_only=True)
    coords, flip, mix_index, mix_lam, mix_bbox, soft = batch
    assert coords.dtype == torch.float32 and coords.shape == (4, 4)
    assert flip.dtype == torch.bool and flip.shape == (4,)
    assert (mix_index, mix_lam, mix_bbox) == (None, None, None)  # --mix-type None
    assert soft.dtype == torch.float16 and soft.shape == (4, 10)  # --use-fp16 logits
    assert float(coords.min()) >= 0.0 and float((coords[:, :2] + coords[:, 2:]).max()) <= 1.0
    meta = json.loads((root / "ladd_store.json").read_text())
    assert meta["layout"] == "sre2l" and meta["config"]["fkd_seed"] == 42
    assert summary.label_bytes == 3 * 20 * 10 * 2 and summary.coord_bytes == 3 * 20 * COORD_BYTES


def test_the_rows_follow_sre2ls_seeded_sampler(store):
    """generate_soft_label.py:190-192: RandomSampler with a generator seeded --fkd-seed (42),
    iterated once per epoch; SRe2L's loader (utils_fkd.py:243-257) finds batch b of epoch e by
    its first image. Our reader rebuilds that order; each stored label is the labeler's logits
    on the crop its coords and flip describe."""
    ds, lab, root, _ = store
    g = torch.Generator().manual_seed(42)
    sampler = torch.utils.data.RandomSampler(range(20), generator=g)
    orders = [list(sampler) for _ in range(3)]
    crops = read_store(root)
    folder_order = crops.summary["image_order"]
    assert crops.rows.tolist() == [folder_order[i] for o in orders for i in o]
    pick = torch.tensor([0, 13, 47])
    x = cut_stored(ds.images[crops.rows[pick]], crops.coords[pick], crops.flip[pick], 32)
    want = lab.model(x).half().float()
    torch.testing.assert_close(crops.logits[pick], want, rtol=1e-3, atol=1e-3)


def test_crops_are_torchvisions_random_resized_crop_drawn_from_a_generator():
    g = torch.Generator().manual_seed(0)
    boxes = [draw_crop(32, g, (0.08, 1.0)) for _ in range(200)]
    for i, j, h, w in boxes:
        assert 0 <= i <= 32 - h and 0 <= j <= 32 - w and h >= 1 and w >= 1
        assert 3 / 4 - 0.1 <= w / h <= 4 / 3 + 0.1 or (h, w) == (32, 32)
    areas = [h * w / 1024 for _, _, h, w in boxes]
    assert min(areas) < 0.2 and max(areas) > 0.8  # scale (0.08, 1): small and large crops
    again = torch.Generator().manual_seed(0)
    assert boxes[:5] == [draw_crop(32, again, (0.08, 1.0)) for _ in range(5)]


def test_training_data_holds_full_images_then_e_epochs_of_crops(store):
    ds, _, root, _ = store
    data = store_training_data(ds, root, epochs=2, codec="topk:3,uint8")
    assert (data.num_full, data.num_crops, len(data)) == (20, 40, 60)
    assert data.soft.tolist() == [False] * 20 + [True] * 40
    rest = data.targets[20:].sort(1).values[:, :7]  # topk:3,uint8,uniform: the rest spread
    torch.testing.assert_close(rest, rest[:, :1].expand(-1, 7))
    torch.testing.assert_close(data.targets.sum(1), torch.ones(60), atol=1e-2, rtol=0)
    assert store_label_bytes(10, 2, "topk:3,uint8")["label_bytes_per_image"] == 2 * 6
    assert store_label_bytes(10, 2, None) == {
        "label_bytes_per_image": 40.0,
        "coord_bytes_per_image": 34.0,
    }
    with pytest.raises(ValueError, match="holds 3 epochs"):
        read_store(root, epochs=4)


def test_a_store_trains_through_the_plan_and_is_tested(store):
    from ladd.data import load_source
    from ladd.deploy import execute
    from ladd.plan import plan_training
    from ladd.training import TrainConfig

    ds, _, root, _ = store
    data = store_training_data(ds, root, epochs=3)
    cfg = TrainConfig(epochs=1, batch_size=32, seeds=(0,), model_options={"width": 8})
    plan = plan_training(data, cfg, "cpu")
    res = execute(plan, ds, load_source("shapes", "test", limit_per_class=5), data=data)
    assert res.num_samples == 80 and 0.0 <= res.accuracy_mean <= 1.0
