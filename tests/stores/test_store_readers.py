"""ladd.stores' readers: each family's store, written as its upstream relabel script writes it
(tests/stores/upstream_stores.py cites the lines), is recognised by content and read back to the
values written (image order, crop boxes, flips, mixes, labels), lazily and with weights_only;
malformed stores are refused in one line."""

from __future__ import annotations

import io
import json
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from ladd.stores import StoreError, open_store, sre2l_epoch_order
from ladd.stores.lpqld import LpqldStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
import upstream_stores as us  # noqa: E402

FAMILIES = {
    "sre2l": (us.write_sre2l, {}),
    "lpld": (us.write_lpld, {}),
    "lpld_pruned": (us.write_lpld, {"prune_ratio": 0.5, "epochs": 3}),
    "edc": (us.write_edc, {}),
    "hald": (us.write_hald, {}),
    "lpqld": (us.write_lpqld, {"epochs": 3}),
}


def _same_batch(got, want: dict) -> None:
    assert torch.equal(got.rows, want["rows"])
    assert torch.equal(got.coords, want["coords"].float())
    assert torch.equal(got.flip, want["flip"])
    assert torch.equal(got.labels, want["labels"])  # fp16 as stored, not converted
    if want["mix_index"] is None:
        assert got.mix is None
    else:
        assert torch.equal(got.mix_index, want["mix_index"].long())
        assert got.mix_lam == want["lam"]
        assert got.mix_box == tuple(int(v) for v in want["box"])
        assert got.mix == "cutmix"
    if "indices" in want:
        assert torch.equal(got.label_indices, want["indices"].long())


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_batch_reads_back_to_what_upstream_wrote(tmp_path, name):
    """SRe2L generate_soft_label.py:222-224, LPLD generate_soft_label_pruning.py:349-355,
    EDC generate_soft_label_with_db.py:271, HALD relabel_slc.py:280, LPQLD
    generate_soft_label_pruning_batch.py:436-447: each stored batch, read through the family's
    image order, gives the rows, boxes, flips, mixes and labels the writer saved."""
    write, kw = FAMILIES[name]
    truth = write(tmp_path / "store", 10, 5, **kw)
    store = open_store(tmp_path / "store")
    assert store.family == name.removesuffix("_pruned")
    info = store.info()
    assert info.epochs >= 1 and info.batch_size == 4
    for e in range(info.epochs):
        assert store.batches(e) == len(truth[e])
        for b in range(store.batches(e)):
            _same_batch(store.batch(e, b), truth[e][b])


def test_sre2l_facts_and_the_seeded_order(tmp_path):
    """No order is stored: SRe2L's loaders draw it from a RandomSampler seeded 42
    (generate_soft_label.py:190-192, utils_fkd.py:243-257); the reader rebuilds that, epoch after
    epoch (the sampler's generator runs on), and a folder of another size is refused."""
    truth = us.write_sre2l(tmp_path / "s", 10, 5, epochs=3)
    store = open_store(tmp_path / "s")
    info = store.info()
    assert (info.epochs, info.batches_per_epoch, info.images, info.num_classes) == (3, 3, 10, 5)
    assert (info.label_kind, info.label_dtype, info.mix, info.top_k) == (
        "logits",
        "float16",
        "cutmix",
        None,
    )
    assert info.label_bytes == 3 * 10 * 5 * 2
    orders = sre2l_epoch_order(10, 3)
    for e in range(3):
        assert torch.cat([t["rows"] for t in truth[e]]).tolist() == orders[e].tolist()
    assert orders[0].tolist() != orders[1].tolist()  # not one permutation reused
    with pytest.raises(StoreError, match="11 images"):
        store.bind_images(11)


def test_numpy_int64_boxes_need_the_allow_list_and_nothing_else_is_patched(tmp_path):
    """SRe2L's CutMix box is np.clip's numpy.int64 (utils_fkd.py:195-198): plain
    torch.load(weights_only=True) refuses the file; our reader allow-lists numpy scalars only."""
    us.write_sre2l(tmp_path / "s", 10, 5, epochs=1)
    path = tmp_path / "s" / "epoch_0" / "batch_0.tar"
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    box = open_store(tmp_path / "s").batch(0, 0).mix_box
    assert all(type(v) is int for v in box)
    import torch.utils.data._utils.fetch as fetch

    assert "load_batch_config" not in (fetch._MapDatasetFetcher.fetch.__code__.co_names)


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_a_pickled_object_is_refused_and_never_runs(tmp_path, capsys):
    us.write_sre2l(tmp_path / "s", 10, 5, epochs=1)
    path = tmp_path / "s" / "epoch_0" / "batch_1.tar"
    obj = torch.load(path, weights_only=False)
    obj[3] = Evil()
    torch.save(obj, path)
    store = open_store(tmp_path / "s")
    with pytest.raises(StoreError) as err:
        store.batch(0, 1)
    assert "weights_only" in str(err.value) and "\n" not in str(err.value)
    assert "pwned" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda o: o.__setitem__(5, o[5].float().fill_(float("nan")).half()), "NaN"),
        (lambda o: o.__setitem__(0, o[0] + 2), "inside the image"),
        (lambda o: o.__setitem__(2, o[2] + 10), "outside the batch"),
        (lambda o: o.__setitem__(3, 1.5), "not in"),
        (lambda o: o.__setitem__(0, o[0][:2]), "crop coordinates for"),
        (lambda o: o.__setitem__(1, o[1][:2]), "seeded order gives"),
        (lambda o: o.pop(), "6 stored elements"),
        (lambda o: o.__setitem__(4, [1, 2, 3]), "four numbers"),
    ],
)
def test_malformed_batches_are_refused_in_one_line(tmp_path, damage, message):
    us.write_sre2l(tmp_path / "s", 10, 5, epochs=1)
    path = tmp_path / "s" / "epoch_0" / "batch_1.tar"
    obj = torch.load(path, weights_only=False)
    damage(obj)
    torch.save(obj, path)
    with pytest.raises(StoreError, match=message) as err:
        open_store(tmp_path / "s").batch(0, 1)
    assert "\n" not in str(err.value) and "batch_1.tar" in str(err.value)


def test_truncated_missing_and_foreign_stores_are_refused(tmp_path):
    us.write_sre2l(tmp_path / "s", 10, 5, epochs=2)
    path = tmp_path / "s" / "epoch_1" / "batch_2.tar"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(StoreError, match="batch_2.tar"):
        open_store(tmp_path / "s").batch(1, 2)
    (tmp_path / "s" / "epoch_1" / "batch_1.tar").unlink()
    with pytest.raises(StoreError, match="not numbered"):
        open_store(tmp_path / "s")
    (tmp_path / "other").mkdir()
    with pytest.raises(StoreError, match="not a recognised soft-label store"):
        open_store(tmp_path / "other")


def test_a_file_over_the_size_cap_or_an_expanding_zip_is_refused_before_loading(
    tmp_path, monkeypatch
):
    """The same caps as every reader (ladd/limits.py): a store file over LADD_MAX_ARCHIVE_BYTES,
    and a torch zip whose entries expand past it, are refused before torch unpickles them."""
    us.write_sre2l(tmp_path / "s", 10, 5, epochs=1)
    path = tmp_path / "s" / "epoch_0" / "batch_1.tar"
    # a torch zip whose storage is deflated: 2 MB of zeros in a few KB
    buf = io.BytesIO()
    torch.save([torch.zeros(500_000)], buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename), zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 100_000
    monkeypatch.setenv("LADD_MAX_ARCHIVE_BYTES", "1M")
    with pytest.raises(StoreError, match="expands to more than 1.0 MiB"):
        open_store(tmp_path / "s").batch(0, 1)
    monkeypatch.setenv("LADD_MAX_ARCHIVE_BYTES", "2K")
    with pytest.raises(StoreError, match="over the limit"):
        open_store(tmp_path / "s")


def test_lpld_reads_batches_by_number_when_two_start_with_the_same_image(tmp_path):
    """LPLD's training finds a batch by its first image (utils_pruning.py
    get_batch_list_img_mapping); two batches that start alike collide there. The JSON's batch
    numbers are used instead."""
    truth = us.write_lpld(tmp_path / "l", 10, 5, epochs=2)
    path = tmp_path / "l" / "sampler_indices_epoch.json"
    order = json.loads(path.read_text())
    first0 = order["0"][0]
    assert isinstance(first0, int)
    store = open_store(tmp_path / "l")
    for e in (0, 1):
        for b in range(store.batches(e)):
            assert store.batch(e, b).rows.tolist() == order[str(e)][4 * b : 4 * b + 4]
    # make epoch 1's first batch start with epoch 0's first image: still read by number
    i = order["1"].index(first0)
    order["1"][0], order["1"][i] = order["1"][i], order["1"][0]
    path.write_text(json.dumps(order))
    store = open_store(tmp_path / "l")
    assert store.batch(1, 0).rows[0] == first0 and store.batch(0, 0).rows[0] == first0
    assert torch.equal(store.batch(1, 1).labels, truth[1][1]["labels"])


def test_pruned_lpld_keeps_the_complete_epochs_and_says_the_partial_one(tmp_path):
    us.write_lpld(tmp_path / "l", 10, 5, epochs=3, prune_ratio=0.5)
    info = open_store(tmp_path / "l").info()
    assert (info.epochs, info.extra_epochs, info.images) == (1, 1, 8)  # drop_last: 2 x 4


def test_lpqld_finds_its_epochs_and_needs_the_class_count(tmp_path):
    """Flat batches: an epoch ends where a batch meets an image its epoch used; the top-k
    indices are int16 and K comes from the set."""
    truth = us.write_lpqld(tmp_path / "q", 10, 7, epochs=3, top_k=3)
    store = open_store(tmp_path / "q")
    assert isinstance(store, LpqldStore)
    info = store.info()
    assert (info.epochs, info.batches_per_epoch, info.top_k, info.num_classes) == (2, 2, 3, None)
    store.bind_classes(7)
    assert store.info().num_classes == 7
    assert torch.equal(store.batch(1, 1).label_indices, truth[1][1]["indices"].long())
    store.bind_classes(5)
    with pytest.raises(StoreError, match="names class"):
        for b in range(2):
            store.batch(0, b)


def test_hald_labels_are_probabilities_and_its_order_is_the_stored_dict(tmp_path):
    truth = us.write_hald(tmp_path / "h", 10, 5, epochs=2)
    store = open_store(tmp_path / "h")
    info = store.info()
    assert info.label_kind == "probs" and info.num_classes == 5
    indices = torch.load(tmp_path / "h" / "sampler_indices_dict.pt", weights_only=True)
    assert torch.cat([store.batch(1, b).rows for b in range(3)]).tolist() == indices["1"]
    assert torch.allclose(truth[0][0]["labels"].float().sum(1), torch.ones(4), atol=1e-2)


def test_a_thousand_class_store_of_tiny_images_reads_lazily(tmp_path):
    """1000 classes, one 8 px image each, batches of 128 with 1000 fp16 logits: every value
    reads back, and opening the store reads only its listing and first batches."""
    truth = us.write_sre2l(tmp_path / "s", 1000, 1000, epochs=2, batch=128, size=8)
    store = open_store(tmp_path / "s")
    info = store.info()
    assert (info.images, info.num_classes, info.batches_per_epoch) == (1000, 1000, 8)
    assert info.label_bytes == 2 * 1000 * 1000 * 2
    for e in range(2):
        for b in range(8):
            _same_batch(store.batch(e, b), truth[e][b])


def test_boxes_stored_as_numpy_ints_plain_ints_or_tensors_read_the_same(tmp_path):
    us.write_sre2l(tmp_path / "s", 10, 5, epochs=1)
    path = tmp_path / "s" / "epoch_0" / "batch_0.tar"
    obj = torch.load(path, weights_only=False)
    want = tuple(int(v) for v in obj[4])
    for box in (
        [int(v) for v in obj[4]],
        [torch.tensor(int(v), dtype=torch.uint8) for v in obj[4]],
    ):
        obj[4] = box
        torch.save(obj, path)
        assert open_store(tmp_path / "s").batch(0, 0).mix_box == want
    obj[4] = [np.int64(v) for v in want]
    torch.save(obj, path)
    assert open_store(tmp_path / "s").batch(0, 0).mix_box == want
