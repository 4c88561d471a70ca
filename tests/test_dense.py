"""Dense labels (Algorithm 1), the label-augmented file, storage overhead, crop statistics."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from ladd.crop_stats import crop_stats, crop_stats_across
from ladd.data import to_uint8
from ladd.dense import (
    augment,
    generate_dense_labels,
    set_base_bytes,
    set_storage_report,
    storage_overhead,
)
from ladd.labeler import Labeler, LabelerMeta
from ladd.models import create_model
from ladd.sets import LabelAugmentedFileError, LabelAugmentedSet, load_set, random_real

pytestmark = pytest.mark.usefixtures("one_thread")


def make_labeler(ds, *, seed: int = 0, width: int = 8, epoch: int = 1, mean=None) -> Labeler:
    """An untrained labeler in the set's input space (the maths does not need a trained one)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model("convnet_d3", ds.num_classes, ds.image_size, width=width).eval()
    meta = LabelerMeta(
        arch="convnet_d3",
        spec=model.spec.to_dict(),
        source="shapes",
        epoch=epoch,
        mean=tuple(mean or ds.mean),
        std=tuple(ds.std),
        class_names=tuple(ds.class_names),
        seed=seed,
        test_accuracy=0.0,
        image_size=ds.image_size,
    )
    return Labeler(model, meta)


@pytest.fixture(scope="module")
def distilled():
    return random_real("shapes", 3, seed=0, limit_per_class=20)  # 30 images, 32 px


def test_dense_labels_are_probability_vectors(distilled) -> None:
    lab = make_labeler(distilled)
    dense = generate_dense_labels(distilled.images, lab.model, 5, 0.625)
    assert dense.shape == (30, 25, 10) and dense.dtype == torch.float32
    assert (dense >= 0).all()
    torch.testing.assert_close(dense.sum(-1), torch.ones(30, 25))


def test_dense_labels_match_per_crop_forward_and_ignore_batching(distilled) -> None:
    from ladd.subsample import sub_sample

    lab = make_labeler(distilled)
    a = generate_dense_labels(distilled.images, lab.model, 3, 0.5, batch_size=20)
    b = generate_dense_labels(distilled.images, lab.model, 3, 0.5, batch_size=1000)
    torch.testing.assert_close(a, b)
    with torch.no_grad():
        crops = sub_sample(distilled.images[4:5], 3, 0.5)[0]  # (9, C, H, W)
        direct = torch.softmax(lab.model(crops), 1)
    torch.testing.assert_close(a[4], direct, rtol=1e-4, atol=1e-5)


def test_temperature_softens(distilled) -> None:
    lab = make_labeler(distilled)
    cold = generate_dense_labels(distilled.images, lab.model, 2, 0.7, temperature=0.5)
    hot = generate_dense_labels(distilled.images, lab.model, 2, 0.7, temperature=4.0)
    ent = lambda p: -(p * p.log()).sum(-1).mean()  # noqa: E731
    assert ent(hot) > ent(cold)
    with pytest.raises(ValueError):
        generate_dense_labels(distilled.images, lab.model, 2, 0.7, temperature=0)


def test_same_seed_same_numbers(distilled) -> None:
    a = augment(distilled, make_labeler(distilled, seed=3), 3, 0.625, device="cpu", codec=None)
    b = augment(distilled, make_labeler(distilled, seed=3), 3, 0.625, device="cpu", codec=None)
    c = augment(distilled, make_labeler(distilled, seed=4), 3, 0.625, device="cpu", codec=None)
    assert torch.equal(a.dense, b.dense)
    assert not torch.equal(a.dense, c.dense)


def test_label_augmented_file_round_trips(distilled, tmp_path: Path) -> None:
    la = augment(distilled, make_labeler(distilled, epoch=10), 5, 0.625, device="cpu", codec=None)
    assert la.full_soft.shape == (30, 10) and la.generation_flops > 0
    assert not la.full_soft.requires_grad and not la.dense.requires_grad  # labels are data
    path = la.save(tmp_path / "set.safetensors")
    back = LabelAugmentedSet.load(path)
    for name in ("images", "labels", "dense", "full_soft"):
        assert torch.equal(getattr(back, name), getattr(la, name)), name
    assert (back.n, back.r, back.class_names) == (5, 0.625, la.class_names)
    assert (back.mean, back.std, back.source) == (la.mean, la.std, "shapes")
    assert back.labeler["epoch"] == 10 and back.labeler["arch"] == "convnet_d3"
    assert back.ipc_per_class() == [3] * 10 and back.describe()["label_kind"] == "hard + dense"
    assert isinstance(load_set(path), LabelAugmentedSet)
    half = LabelAugmentedSet.load(la.save(tmp_path / "half.safetensors", codec="float16"))
    assert half.dense.dtype == torch.float16
    torch.testing.assert_close(half.dense.float(), la.dense, atol=1e-3, rtol=0)
    assert (tmp_path / "half.safetensors").stat().st_size < path.stat().st_size
    dist = back.to_distilled()
    assert torch.equal(dist.images, la.images) and dist.num_classes == 10


def test_loading_bad_files_gives_clear_errors(distilled, tmp_path: Path) -> None:
    with pytest.raises(LabelAugmentedFileError, match="no such file"):
        LabelAugmentedSet.load(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(LabelAugmentedFileError, match="not a readable"):
        LabelAugmentedSet.load(tmp_path / "junk.safetensors")
    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(LabelAugmentedFileError, match="not a label-augmented set"):
        LabelAugmentedSet.load(tmp_path / "other.safetensors")
    la = augment(distilled, make_labeler(distilled), 2, 0.625, device="cpu", codec=None)
    meta = {
        "n": 3,
        "r": 0.625,
        "class_names": list(la.class_names),
        "mean": list(la.mean),
        "std": list(la.std),
    }
    tensors = {"images": la.images, "labels": la.labels, "dense": la.dense}
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata={"ladd_set": json.dumps(meta)})
    with pytest.raises(LabelAugmentedFileError, match=r"dense labels must be \(M, N\*N, K\)"):
        LabelAugmentedSet.load(tmp_path / "bad.safetensors")
    with pytest.raises(LabelAugmentedFileError, match="probability"):
        replace(la, dense=la.dense * 2).save(tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match="unknown label codec 'nonsense'"):
        la.save(tmp_path / "y.safetensors", codec="nonsense")
    assert not (tmp_path / "y.safetensors").exists()


def test_input_space_mismatch_is_an_error(distilled) -> None:
    wrong = make_labeler(distilled, mean=(0.4914, 0.4822, 0.4465))
    with pytest.raises(ValueError, match="normalisation mean differs"):
        augment(distilled, wrong, 2, 0.625, device="cpu", codec=None)
    la = augment(distilled, wrong, 2, 0.625, device="cpu", allow_mismatch=True, codec=None)
    assert la.labeler["mismatch"]
    zca_labeler = make_labeler(distilled)
    zca_labeler = Labeler(zca_labeler.model, replace(zca_labeler.meta, zca_space=True))
    with pytest.raises(ValueError, match="ZCA"):
        augment(distilled, zca_labeler, 2, 0.625, device="cpu", codec=None)


def _zip_file_size(path: Path, blobs: dict[str, bytes]) -> int:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in blobs.items():
            zf.writestr(name, data)
    return path.stat().st_size


def test_overhead_matches_a_direct_zip_measurement(distilled, tmp_path: Path) -> None:
    la = augment(distilled, make_labeler(distilled), 5, 0.625, device="cpu", codec=None)
    u8 = to_uint8(la.images, la.mean, la.std)
    images = u8.numpy().tobytes()
    labels = la.labels.float().numpy().tobytes()
    dense = la.dense.float().numpy().tobytes()
    without = _zip_file_size(tmp_path / "a.zip", {"images.bin": images, "labels.bin": labels})
    with_ = _zip_file_size(
        tmp_path / "b.zip", {"images.bin": images, "labels.bin": labels, "dense.bin": dense}
    )
    expected = (with_ - without) / without
    got = storage_overhead(u8, la.dense, la.labels)
    assert got == pytest.approx(expected, rel=1e-9)
    # The file also stores the full images' soft labels (float32 [M, K] beside float32 dense
    # labels): the set's overhead counts them; the paper's figure (dense alone) stays apart.
    full = la.full_soft.float().numpy().tobytes()
    every = _zip_file_size(
        tmp_path / "c.zip",
        {"images.bin": images, "labels.bin": labels, "dense.bin": dense, "full_soft.bin": full},
    )
    report = set_storage_report(la)
    assert report.overhead == pytest.approx((every - without) / without, rel=1e-9)
    assert report.dense_only_overhead == pytest.approx(expected, rel=1e-9)
    assert report.overhead > report.dense_only_overhead
    assert set_storage_report(la, full_soft=False).overhead == pytest.approx(expected, rel=1e-9)
    # the baseline alone, measured on the plain distilled set (Baseline++ needs no labeler)
    assert set_base_bytes(distilled) == without == set_storage_report(la).base_bytes
    assert 0 < got < 1  # 32 px: dense labels are a big fraction of a small image
    # the in-memory archive is byte-for-byte the file
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("images.bin", images)
    assert len(buf.getvalue()) > 0


def test_overhead_at_128px_ipc10_n5_is_near_the_papers() -> None:
    ds = random_real("shapes", 10, seed=0, image_size=128, limit_per_class=10)
    # Confident soft labels, as a trained labeler gives (softmax values of realistic spread).
    g = torch.Generator().manual_seed(0)
    dense = torch.softmax(torch.randn(len(ds), 25, ds.num_classes, generator=g) * 4, dim=-1)
    frac = storage_overhead(to_uint8(ds.images, ds.mean, ds.std), dense, ds.labels)
    print(f"overhead at 128 px, IPC 10, N 5: {frac:.2%}")
    assert 0.01 < frac < 0.05  # paper: ~2.5 %


def test_crop_stats() -> None:
    dense = torch.tensor([[[0.9, 0.1], [0.5, 0.5]], [[0.2, 0.8], [0.6, 0.4]]])  # (2, 2, 2)
    s = crop_stats(dense, torch.tensor([0, 1]))
    torch.testing.assert_close(s.max_prob, torch.tensor([[0.9, 0.5], [0.8, 0.6]]))
    assert s.agrees.tolist() == [[True, True], [True, False]]
    assert s.entropy[0, 1] == pytest.approx(torch.log(torch.tensor(2.0)).item(), rel=1e-5)
    summary = s.summary()
    assert summary["agreement"] == pytest.approx(0.75)
    assert len(s.per_crop()["entropy"]) == 2


def test_crop_stats_across_epochs(distilled) -> None:
    labs = [make_labeler(distilled, seed=s, epoch=e) for s, e in ((0, 10), (1, 20))]
    res = crop_stats_across(distilled, labs, 2, 0.625, device="cpu")
    assert sorted(res) == [10, 20]
    assert all(0 <= v["agreement"] <= 1 and v["mean_max_prob"] > 0 for v in res.values())


def test_label_generation_flops_count_the_crop_forwards_only(distilled) -> None:
    """Algorithm 1 labels the N x N crops of each image: M * N^2 labeler forwards (the full-image
    soft labels kept for the full_soft ablations are not part of LADD's cost)."""
    from ladd.flops import inference_flops_per_sample

    lab = make_labeler(distilled)
    la = augment(distilled, lab, 3, 0.625, device="cpu", codec=None)
    per = inference_flops_per_sample(lab.model, distilled.images[:1])
    assert la.generation_flops == pytest.approx(per * len(distilled) * 9)
