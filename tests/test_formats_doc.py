"""docs/formats.md is enough to decode a label-augmented file (issue 40): a decoder written from
the document alone (tests/formats_doc_decoder.py: numpy and the standard library, no LADD,
torch or safetensors import) reads files of every codec, written by the writer `ladd augment`
uses (ladd.dense.augment with a codec, then LabelAugmentedSet.save, as ladd.pipeline's augment
step does), as LADD's own reader does, and cuts the crops the labeler saw."""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from formats_doc_decoder import crop_boxes, crops_of, decode_file, read_container

from ladd.codecs import STANDARD_SPECS, parse_codec
from ladd.dense import augment
from ladd.labeler import Labeler, LabelerMeta
from ladd.models import create_model
from ladd.sets import DistilledSet, LabelAugmentedSet, random_real
from ladd.subsample import crop_boxes as ladd_crop_boxes
from ladd.subsample import sub_sample
from tests.test_dense import make_labeler

pytestmark = pytest.mark.usefixtures("one_thread")

DECODER = Path(__file__).parent / "formats_doc_decoder.py"
# every standard codec, top-k with renormalised residuals, and top-k with k > K (renormalised:
# every class kept)
SPECS = (*STANDARD_SPECS, "topk:3,float16,renorm", "topk:5,uint8,renorm", "topk:12,uint8")
ATOL = 1e-6  # row sums taken in another order than PyTorch's (docs/formats.md says ~1e-7)


@pytest.fixture(scope="module")
def labelled():
    ds = random_real("shapes", 2, seed=0, limit_per_class=20)  # 20 images, 32 px, 10 classes
    return ds, make_labeler(ds)


def _compare(path: Path, atol: float = ATOL) -> None:
    """The document's decoder against LabelAugmentedSet.load on one file."""
    mine, theirs = decode_file(path), LabelAugmentedSet.load(path)
    np.testing.assert_array_equal(mine.images, theirs.images.numpy())  # bit for bit
    np.testing.assert_array_equal(mine.labels, theirs.labels.numpy())
    assert mine.meta["n"] == theirs.n and mine.meta["r"] == theirs.r
    assert tuple(mine.meta["class_names"]) == theirs.class_names
    assert mine.dense.shape == tuple(theirs.dense_labels().shape)
    np.testing.assert_allclose(mine.dense, theirs.probs().numpy(), rtol=0, atol=atol)
    assert (mine.full_soft is None) == (theirs.full_soft is None)
    if mine.full_soft is not None:
        np.testing.assert_allclose(mine.full_soft, theirs.full_soft.numpy(), rtol=0, atol=atol)


def test_the_decoder_imports_only_numpy_and_the_standard_library():
    tree = ast.parse(DECODER.read_text())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules.add((node.module or "").split(".")[0])
    assert modules == {"__future__", "dataclasses", "json", "math", "numpy", "pathlib", "struct",
                       "typing"}  # fmt: skip


@pytest.mark.parametrize("spec", SPECS)
def test_a_file_of_every_codec_decodes_from_the_document_alone(labelled, tmp_path, spec):
    ds, lab = labelled
    la = augment(ds, lab, n=3, r=0.6, device="cpu", codec=spec)
    path = la.save(tmp_path / "la.safetensors")
    tensors, header = read_container(path)
    meta = json.loads(header["ladd_set"])
    codec = parse_codec(spec)
    assert meta["codec"] == {"name": codec.name, "params": codec.params}
    assert meta["pixels"] == "uint8" and tensors["images"].dtype == np.uint8
    dense = {k for k in tensors if k.startswith("dense")}
    full = {k for k in tensors if k.startswith("full_soft")}
    if codec.name in ("float32", "float16"):
        assert dense == {"dense"} and full == {"full_soft"}
        assert tensors["full_soft"].dtype == np.float32  # float32 for both float codecs
    else:
        assert dense == {f"dense.{k}" for k in codec.layout(10)}
        assert full == {f"full_soft.{k}" for k in codec.layout(10)}
        assert all(tensors[k].shape[:2] == (20, 9) for k in dense)
        assert all(tensors[k].shape[:2] == (20, 1) for k in full)
    if spec == "topk:12,uint8":  # k >= K: all ten classes kept, renormalised
        assert tensors["dense.index"].shape == (20, 9, 10)
    _compare(path)
    if codec.name in ("float32", "float16", "bfloat16"):  # nothing to sum: exactly
        mine, theirs = decode_file(path), LabelAugmentedSet.load(path)
        np.testing.assert_array_equal(mine.dense, theirs.probs().numpy())


def test_float_images_and_the_sets_own_soft_labels_decode_as_stored(labelled, tmp_path):
    """Images that are no 8-bit pixels' normalisation are stored as float32 (pixels
    "float32"); a set's own soft labels are a plain float32 [M, K] tensor."""
    ds, lab = labelled
    g = torch.Generator().manual_seed(1)
    soft = torch.softmax(torch.randn(len(ds), 10, generator=g), dim=1)
    noisy = replace(ds, images=ds.images + 1e-3 * torch.randn(ds.images.shape, generator=g))
    la = augment(replace(noisy, soft_labels=soft), lab, n=2, r=0.7, device="cpu", codec=None)
    path = la.save(tmp_path / "float.safetensors", codec="int8:log")
    mine = decode_file(path)
    assert mine.meta["pixels"] == "float32" and mine.images.dtype == np.float32
    np.testing.assert_array_equal(mine.soft_labels, soft.numpy())
    _compare(path)


def test_uniform_top_k_rows_whose_rounded_mass_exceeds_one_are_scaled_down(labelled, tmp_path):
    """uint8 values round(255 p): 84.51 / 255 three times and 1.47 / 255 store 85, 85, 85, 1,
    a kept mass of 256 / 255 > 1, which the uniform residual divides out."""
    ds, lab = labelled
    la = augment(ds, lab, n=2, r=0.625, device="cpu", codec=None)
    dense = la.dense.clone()
    dense[0, 0] = torch.tensor([84.51, 84.51, 84.51, 1.47, 0, 0, 0, 0, 0, 0]) / 255
    path = replace(la, dense=dense).save(tmp_path / "over.safetensors", codec="topk:4,uint8")
    tensors, _ = read_container(path)
    assert int(tensors["dense.value"][0, 0].astype(int).sum()) == 256
    mine = decode_file(path)
    np.testing.assert_allclose(mine.dense[0, 0, :4], np.array([85, 85, 85, 1]) / 256, atol=1e-7)
    _compare(path)


def _many_class_set(k: int, m: int = 8, size: int = 8) -> tuple[DistilledSet, Labeler]:
    """m random images of `size` px over k classes and an untrained, confident labeler."""
    g = torch.Generator().manual_seed(0)
    names = tuple(f"c{i}" for i in range(k))
    ds = DistilledSet(
        images=torch.randn(m, 3, size, size, generator=g), labels=torch.arange(m) * (k // m),
        soft_labels=None, lr=None, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
        class_names=names, format="tensor", source=None,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = create_model("convnet_d3", k, size, width=8).eval()
    # confident labels on a few classes, some of them above 32,767 where k allows (an untrained
    # head spreads the mass over all k classes alike)
    head = [mod for mod in model.modules() if isinstance(mod, torch.nn.Linear)][-1]
    favoured = torch.tensor([k - 1, k // 2 + k // 10, k // 3, 5])
    head.bias.data[favoured] += torch.tensor([14.0, 13.0, 12.5, 12.0])
    meta = LabelerMeta(
        arch="convnet_d3", spec=model.spec.to_dict(), source="synthetic", epoch=1,
        mean=ds.mean, std=ds.std, class_names=names, seed=0, test_accuracy=0.0, image_size=size,
    )  # fmt: skip
    return ds, Labeler(model, meta)


@pytest.mark.parametrize("spec", ["topk:5,uint8", "topk:2,float16,renorm"])
def test_16_bit_class_indices_are_stored_signed_and_read_unsigned(tmp_path, spec):
    """40,000 classes: indices in int16, classes 32,768 and above stored negative."""
    ds, lab = _many_class_set(40_000)
    path = augment(ds, lab, n=2, r=0.5, device="cpu", codec=spec).save(tmp_path / "k.st")
    tensors, _ = read_container(path)
    index = tensors["dense.index"]
    assert index.dtype == np.dtype("<i2") and (index < 0).any()
    assert tensors["full_soft.index"].dtype == np.dtype("<i2")
    _compare(path)
    mine = decode_file(path)
    assert mine.dense.shape == (8, 4, 40_000)
    assert (mine.dense.argmax(-1) >= 32_768).any()


def test_a_few_hundred_classes_take_16_bit_indices_too(tmp_path):
    ds, lab = _many_class_set(300)
    path = augment(ds, lab, n=3, r=0.6, device="cpu", codec="topk:5,uint8").save(tmp_path / "a")
    tensors, _ = read_container(path)
    assert tensors["dense.index"].dtype == np.dtype("<i2")
    _compare(path)


@pytest.mark.parametrize("size", [1, 7, 8, 16, 31, 32, 33, 128, 224])
def test_the_documents_crop_boxes_are_ladds(size):
    for n in (1, 2, 3, 4, 5, 7):
        for r in (0.05, 0.3, 0.5, 0.5625, 0.6, 0.625, 0.75, 1.0):
            assert crop_boxes(size, n, r) == ladd_crop_boxes(size, n, r), (size, n, r)


def test_offsets_round_half_up_and_one_crop_is_centred():
    # (32 - 18) / 4 = 3.5: offsets 0, 3.5, 7, 10.5, 14 -> 0, 4, 7, 11, 14 (half-even: 4, 10)
    assert [b[0] for b in crop_boxes(32, 5, 0.5625)[::5]] == [0, 4, 7, 11, 14]
    assert crop_boxes(32, 1, 0.5) == [(8, 8, 16, 16)]
    assert crop_boxes(33, 1, 0.5) == [(8, 8, 17, 17)]  # side round(16.5) = 17, (33 - 17) / 2
    assert crop_boxes(128, 5, 0.625)[:5] == [(0, o, 80, 80) for o in (0, 12, 24, 36, 48)]
    assert crop_boxes(32, 2, 0.6)[1] == (0, 13, 19, 19)  # raster order: row 0, column 1


@pytest.mark.parametrize(("n", "r"), [(5, 0.625), (3, 0.6), (4, 0.5625), (1, 0.5), (2, 1.0)])
def test_the_documents_crops_are_what_the_labeler_saw(labelled, tmp_path, n, r):
    """The crops docs/formats.md describes (cut from the normalised image, bilinear resize with
    half-pixel centres, no antialiasing), fed to the file's labeler, give the file's float32
    labels; and they are ladd.subsample's crops."""
    ds, lab = labelled
    path = augment(ds, lab, n=n, r=r, device="cpu", codec="float32").save(tmp_path / "f32")
    mine = decode_file(path)
    crops = np.stack([crops_of(img, n, r) for img in mine.images[:4]])  # (4, n*n, C, S, S)
    ref = sub_sample(torch.from_numpy(mine.images[:4]), n, r).numpy()
    np.testing.assert_allclose(crops, ref, rtol=0, atol=1e-5)
    with torch.no_grad():
        logits = lab.model(torch.from_numpy(crops.reshape(-1, *crops.shape[2:])))
    probs = torch.softmax(logits / mine.meta["temperature"], dim=1).numpy().reshape(4, n * n, -1)
    np.testing.assert_allclose(probs, mine.dense[:4], rtol=0, atol=1e-5)
