"""ladd.stores.convert_store: any family's store written once into our memory-mapped safetensors
layout, read back batch for batch (exactly with the labels as stored; within the codec's stated
error with a codec), recording its source; a damaged file is refused in one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from ladd.codecs import parse_codec
from ladd.sets.base import read_safetensors_header
from ladd.stores import StoreError, convert_store, open_store, target_probs
from ladd.stores.converted import FORMAT_KEY

sys.path.insert(0, str(Path(__file__).resolve().parent))
import upstream_stores as us  # noqa: E402

WRITERS = {
    "sre2l": (us.write_sre2l, {"mix": "mixup"}),
    "lpld": (us.write_lpld, {}),
    "edc": (us.write_edc, {}),
    "hald": (us.write_hald, {}),
    "lpqld": (us.write_lpqld, {"epochs": 3}),
}


def _batches(store):
    info = store.info()
    for e in range(info.epochs):
        for b in range(store.batches(e)):
            yield e, b, store.batch(e, b)


@pytest.mark.parametrize("family", list(WRITERS))
def test_conversion_keeps_every_batch_as_stored(tmp_path, family):
    write, kw = WRITERS[family]
    write(tmp_path / "src", 10, 5, **kw)
    src = open_store(tmp_path / "src")
    out = convert_store(src, tmp_path / "store.safetensors")
    conv = open_store(out)
    assert conv.family == "ladd"
    meta = json.loads(read_safetensors_header(out).metadata[FORMAT_KEY])
    assert meta["source"]["family"] == family and meta["source"]["path"] == str(src.root)
    assert meta["source"]["digest"] == src.digest() and len(meta["digest"]) == 20
    info = conv.info()
    assert (info.epochs, info.batches_per_epoch, info.batch_size) == (
        src.info().epochs,
        src.info().batches_per_epoch,
        src.info().batch_size,
    )
    assert info.label_bytes == src.info().label_bytes or family == "lpqld"
    for e, b, got in _batches(conv):
        want = src.batch(e, b)
        assert torch.equal(got.rows, want.rows)
        assert torch.equal(got.coords, want.coords)
        assert torch.equal(got.flip, want.flip)
        assert torch.equal(got.labels, want.labels) and got.labels.dtype == want.labels.dtype
        assert (got.mix, got.mix_lam, got.mix_box) == (want.mix, want.mix_lam, want.mix_box)
        assert got.mix_index is None or torch.equal(got.mix_index, want.mix_index)
        assert got.label_kind == want.label_kind and got.crop_rounding == want.crop_rounding
        if want.label_indices is not None:
            assert torch.equal(got.label_indices, want.label_indices)


@pytest.mark.parametrize("spec", ["float16", "topk:3,uint8"])
def test_a_codec_keeps_the_targets_within_its_error(tmp_path, spec):
    """With a codec the file keeps softmax(logits / T), the student's targets, in LADD's codec."""
    us.write_sre2l(tmp_path / "src", 10, 5)
    src = open_store(tmp_path / "src")
    out = convert_store(src, tmp_path / "c.safetensors", codec=spec, temperature=4.0)
    conv = open_store(out)
    codec = parse_codec(spec)
    bound = codec.max_abs_error(5)
    for e, b, got in _batches(conv):
        want = target_probs(src.batch(e, b), 4.0)
        assert got.label_kind == "probs"
        assert float((got.labels - want).abs().max()) <= bound + 1e-6
    info = conv.info()
    assert info.label_bytes == codec.bytes_per_crop(5) * 10 * 2
    assert "T = 4" in " ".join(info.notes)


def test_conversion_reads_lazily_from_a_memory_map(tmp_path, monkeypatch):
    """Opening and reading one batch never loads the whole label tensor."""
    us.write_sre2l(tmp_path / "src", 1000, 1000, epochs=2, batch=128, size=8)
    out = convert_store(open_store(tmp_path / "src"), tmp_path / "big.safetensors")
    conv = open_store(out)
    from safetensors import safe_open

    calls = []
    real = type(conv._file).get_tensor
    monkeypatch.setattr(
        type(conv._file), "get_tensor", lambda self, k: calls.append(k) or real(self, k)
    )
    batch = conv.batch(1, 3)
    assert len(batch) == 128 and "labels" not in calls
    with safe_open(str(out), framework="pt") as f:
        assert tuple(f.get_slice("labels").get_shape()) == (2000, 1000)


def test_a_damaged_converted_file_is_refused_in_one_line(tmp_path):
    us.write_sre2l(tmp_path / "src", 10, 5)
    out = convert_store(open_store(tmp_path / "src"), tmp_path / "s.safetensors")
    data = bytearray(out.read_bytes())
    out.write_bytes(bytes(data[: len(data) - 50]))
    with pytest.raises(StoreError, match="truncated") as err:
        open_store(out)
    assert "\n" not in str(err.value)
    # offsets that do not add up
    good = convert_store(open_store(tmp_path / "src"), tmp_path / "t.safetensors")
    from safetensors.torch import load_file, save_file

    tensors = load_file(good)
    meta = read_safetensors_header(good).metadata
    tensors["batch_offsets"][1] = 99
    save_file(tensors, tmp_path / "u.safetensors", metadata=meta)
    with pytest.raises(StoreError, match="offsets are inconsistent"):
        open_store(tmp_path / "u.safetensors")


def test_a_converted_store_pickles_by_its_path(tmp_path):
    """A sweep's or score's Ray workers receive the store pickled: the memory map is reopened."""
    import pickle

    us.write_sre2l(tmp_path / "src", 10, 5)
    conv = open_store(convert_store(open_store(tmp_path / "src"), tmp_path / "s.safetensors"))
    again = pickle.loads(pickle.dumps(conv))
    assert torch.equal(again.batch(1, 2).labels, conv.batch(1, 2).labels)
