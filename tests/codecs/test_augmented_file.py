"""Label codecs in the label-augmented file, in `augment` and on the training data path
(issue 26): the file records its codec, older files still read, bad payloads are one line,
and a set held in a compact codec trains without its [M, N*N, K] float tensor."""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from ladd.cli import app
from ladd.codecs import STANDARD_SPECS, EncodedTargets, parse_codec
from ladd.dense import augment, codec_table, generate_dense_labels, set_storage_report
from ladd.labeler import Labeler, LabelerMeta
from ladd.limits import InputLimitError
from ladd.models import create_model
from ladd.sets import LabelAugmentedFileError, LabelAugmentedSet, random_real
from ladd.training import TrainConfig, build_training_data
from tests.test_dense import make_labeler

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def labelled():
    ds = random_real("shapes", 3, seed=0, limit_per_class=20)  # 30 images, 32 px, 10 classes
    lab = make_labeler(ds)
    return ds, lab, augment(ds, lab, n=3, r=0.6, device="cpu", codec=None)


@pytest.mark.parametrize("spec", STANDARD_SPECS + ("topk:3,float16,renorm",))
def test_every_codec_round_trips_through_the_file_within_its_stated_error(labelled, tmp_path, spec):
    _, _, la = labelled
    path = la.save(tmp_path / "la.safetensors", codec=spec)
    back = LabelAugmentedSet.load(path)
    codec = parse_codec(spec)
    assert back.codec.spec == codec.spec
    meta = json.loads(_header(path)["__metadata__"]["ladd_set"])
    assert meta["codec"] == {"name": codec.name, "params": codec.params}
    err = (back.probs() - la.probs()).abs().max().item()
    assert err <= codec.max_abs_error(la.num_classes) + 1e-6, (spec, err)
    if spec == "float32":
        assert torch.equal(back.probs(), la.probs())
    # The file holds the payload bytes the codec counts, and nothing in float32 beside them.
    assert back.label_bytes() == codec.bytes_per_crop(la.num_classes) * len(la) * la.num_crops
    assert torch.equal(back.image_probs(4), back.probs()[4])


def test_a_file_written_before_codecs_still_reads(labelled, tmp_path):
    """Older LADD wrote `dense` in float16 with no codec in its metadata."""
    _, _, la = labelled
    path = la.save(tmp_path / "new.safetensors", codec="float16")
    header = _header(path)
    meta = json.loads(header["__metadata__"]["ladd_set"])
    del meta["codec"]
    tensors = _tensors(path)
    save_file(tensors, tmp_path / "old.safetensors", {"ladd_set": json.dumps(meta)})
    old = LabelAugmentedSet.load(tmp_path / "old.safetensors")
    assert old.codec.spec == "float16" and old.dense.dtype == torch.float16
    assert torch.equal(old.probs(), la.probs().half().float())


def _header(path: Path) -> dict:
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + size])


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(path)


def _rewrite(path: Path, out: Path, *, meta_edit=None, tensor_edit=None) -> Path:
    meta = json.loads(_header(path)["__metadata__"]["ladd_set"])
    tensors = _tensors(path)
    if meta_edit:
        meta_edit(meta)
    if tensor_edit:
        tensor_edit(tensors)
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(tensors, out, {"ladd_set": json.dumps(meta), "format": "ladd.label_augmented/1"})
    return out


@pytest.mark.parametrize(
    ("meta_edit", "tensor_edit", "message"),
    [
        (lambda m: m.update(codec={"name": "zstd"}), None, "unknown label codec 'zstd'"),
        (lambda m: m.update(codec="topk"), None, "codec is not a map"),
        (lambda m: m["codec"].update(params={"k": 0}), None, "topk needs k >= 1"),
        (None, lambda t: t.pop("dense.value"), "need tensors"),
        (None, lambda t: t.update({"dense.value": t["dense.value"].float()}), "value must be"),
        (
            None,
            lambda t: t.update({"dense.index": t["dense.index"][:, :, :2]}),
            r"index must be \(M, N\*N, 3\)",
        ),
        (
            None,
            lambda t: t.update({"dense.index": t["dense.index"].clone().fill_(200)}),
            "class ind",
        ),
        (lambda m: m.update(codec={"name": "float16", "params": {}}), None, "dense"),
    ],
)
def test_a_malformed_codec_file_is_refused_in_one_line(
    labelled, tmp_path, meta_edit, tensor_edit, message
):
    _, _, la = labelled
    good = la.save(tmp_path / "good.safetensors", codec="topk:3,uint8")
    bad = _rewrite(good, tmp_path / "bad.safetensors", meta_edit=meta_edit, tensor_edit=tensor_edit)
    # load_head (the dashboard's lazy view, ladd.sets.view) checks the file as load does.
    for read in (LabelAugmentedSet.load, LabelAugmentedSet.load_head):
        with pytest.raises(LabelAugmentedFileError) as info:
            read(bad)
        text = str(info.value)
        assert "\n" not in text and str(bad) in text
        assert __import__("re").search(message, text), text


def test_augment_encodes_batch_by_batch_as_the_whole_set_would_encode(labelled):
    ds, lab, la = labelled
    for spec in ("topk:3,uint8", "int8:affine", "bfloat16"):
        held = augment(ds, lab, n=3, r=0.6, device="cpu", codec=spec, batch_size=20)
        assert held.dense is None and held.codec.spec == parse_codec(spec).spec
        whole = la.with_codec(spec).encoded
        for key, t in whole.payload.items():
            assert torch.equal(held.encoded.payload[key], t), (spec, key)
    half = augment(ds, lab, n=3, r=0.6, device="cpu", codec="float16")
    assert half.dense.dtype == torch.float16 and half.encoded is None


def test_lazy_training_targets_decode_the_same_rows_and_train_the_same_weights(labelled):
    """The lazy path (EncodedTargets) is the decoded float path, row for row: the same targets,
    so the same trained model (one seed, the reference trainer)."""
    from plans import train_and_test

    _, _, la = labelled
    held = la.with_codec("topk:3,uint8")
    lazy = build_training_data(held, "ladd")
    eager = build_training_data(held, "ladd", lazy_labels=False)
    assert isinstance(lazy.targets, EncodedTargets) and isinstance(eager.targets, torch.Tensor)
    assert lazy.targets.shape == eager.targets.shape
    idx = torch.randint(0, len(eager), (3, 7), generator=torch.Generator().manual_seed(0))
    assert torch.equal(lazy.targets[idx], eager.targets[idx])
    mixed = build_training_data(held, "crops_hard_dense")  # dense rows after the hard crops
    assert torch.equal(
        mixed.targets.materialise(),
        build_training_data(held, "crops_hard_dense", lazy_labels=False).targets,
    )

    from ladd.data import load_source

    real = load_source("shapes", "test", limit_per_class=3)
    cfg = TrainConfig(
        arch="convnet_d3",
        mode="ladd",
        epochs=2,
        seeds=(0,),
        batch_size=32,
        model_options={"width": 8},
        trainer="reference",
        dsa=False,
    )
    decoded = replace(held, dense=held.probs(), encoded=None)  # the same values, as float32
    a = train_and_test(held, real, cfg)
    b = train_and_test(decoded, real, cfg)
    for pa, pb in zip(a.models[0].parameters(), b.models[0].parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_the_zip_overhead_is_measured_as_each_codec_stores_the_labels(labelled):
    _, _, la = labelled
    rows = {r.codec: r for r in codec_table(la)}
    assert rows["float32"].overhead == pytest.approx(set_storage_report(la).overhead)
    assert rows["float32"].label_bytes_per_image == 4 * la.num_crops * la.num_classes
    assert rows["topk:1,uint8,uniform"].label_bytes_per_image == 2 * la.num_crops
    # Smaller payloads make smaller archives for these random labels.
    assert rows["topk:1,uint8,uniform"].zip_bytes < rows["float16"].zip_bytes
    assert rows["float16"].zip_bytes < rows["float32"].zip_bytes
    assert len({r.base_bytes for r in rows.values()}) == 1
    # Each row counts the full images' soft labels the file stores beside the dense ones (in
    # the dense labels' codec, float32 beside float labels); the paper's figure leaves them out.
    for spec, row in rows.items():
        assert row.overhead == pytest.approx(set_storage_report(la, spec).overhead)
        alone = set_storage_report(la, spec, full_soft=False).overhead
        assert row.dense_only_overhead == pytest.approx(alone)
        assert row.overhead > row.dense_only_overhead, spec


def test_cli_augment_codec_overhead_all_and_info(tmp_path):
    run = CliRunner().invoke
    ws = ["--workspace", str(tmp_path / "ws")]
    res = run(
        app,
        [
            "train-labeler",
            "--source",
            "shapes",
            "--epochs",
            "1",
            "--save-at",
            "1",
            "--limit-per-class",
            "10",
            "--width",
            "8",
            "--out",
            str(tmp_path / "lab"),
            "--device",
            "cpu",
            *ws,
        ],
    )
    assert res.exit_code == 0, res.output
    res = run(
        app, ["random-real", "--source", "shapes", "--ipc", "2", "--out", str(tmp_path / "rr"), *ws]
    )
    assert res.exit_code == 0, res.output
    la_file = tmp_path / "la.safetensors"
    res = run(
        app,
        [
            "augment",
            str(tmp_path / "rr"),
            "--labeler",
            str(tmp_path / "lab"),
            "--n",
            "3",
            "--codec",
            "topk:2,uint8",
            "--out",
            str(la_file),
            "--device",
            "cpu",
            *ws,
        ],
    )
    assert res.exit_code == 0, res.output
    assert "topk:2,uint8,uniform" in res.output
    assert LabelAugmentedSet.load(la_file).codec.spec == "topk:2,uint8,uniform"
    res = run(app, ["overhead", str(la_file), "--codec", "all", "--json"])
    assert res.exit_code == 0, res.output
    table = json.loads(res.stdout[res.stdout.index("{") :])
    assert [r["codec"] for r in table["codecs"]] == [parse_codec(s).spec for s in STANDARD_SPECS]
    res = run(app, ["info", str(la_file)])
    assert (
        res.exit_code == 0
        and "label_bytes_per_image" in res.output
        and "zip_overhead" in res.output
    )
    for bad in (["--codec", "topk:0"], ["--codec", "float32", "--fp16"]):
        res = run(
            app,
            [
                "augment",
                str(tmp_path / "rr"),
                "--labeler",
                str(tmp_path / "lab"),
                *bad,
                "--out",
                str(tmp_path / "x.safetensors"),
                "--device",
                "cpu",
                *ws,
            ],
        )
        assert res.exit_code != 0, bad
        assert "topk needs k >= 1" in res.output or "--fp16 is --codec float16" in res.output


def thousand_class_set(m: int = 1000, size: int = 8) -> tuple[Labeler, object]:
    """A synthetic 1000-class distilled set (IPC 1, tiny images) and an untrained labeler."""
    from ladd.sets import DistilledSet

    g = torch.Generator().manual_seed(0)
    names = tuple(f"c{i}" for i in range(1000))
    ds = DistilledSet(
        images=torch.randn(m, 3, size, size, generator=g),
        labels=torch.arange(m) % 1000,
        soft_labels=None,
        lr=None,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        class_names=names,
        format="tensor",
        source=None,
    )
    torch.manual_seed(0)
    model = create_model("convnet_d3", 1000, size, width=8).eval()
    meta = LabelerMeta(
        arch="convnet_d3",
        spec=model.spec.to_dict(),
        source="synthetic",
        epoch=1,
        mean=ds.mean,
        std=ds.std,
        class_names=names,
        seed=0,
        test_accuracy=0.0,
        image_size=size,
    )
    return Labeler(model, meta), ds


def test_a_1000_class_set_augments_and_trains_through_topk_under_a_crop_memory_cap(
    tmp_path, monkeypatch
):
    """1000 images x 25 crops x 1000 classes: float32 dense labels need 100 MB, which a 64 MB
    cap on label-augmentation memory (LADD_MAX_CROP_BYTES) refuses; top-5 uint8 labels need
    0.4 MB and pass it, and the training set keeps them encoded (bench.codec_memory prints the
    peak RSS of both paths)."""
    lab, ds = thousand_class_set()
    monkeypatch.setenv("LADD_MAX_CROP_BYTES", "64M")
    with pytest.raises(InputLimitError, match="LADD_MAX_CROP_BYTES"):
        generate_dense_labels(ds.images, lab.model, 5, 0.625, device="cpu")
    la = augment(ds, lab, n=5, r=0.625, device="cpu", codec="topk:5,uint8")
    assert la.dense is None and la.label_bytes() == 1000 * 25 * (5 * 2 + 5)
    back = LabelAugmentedSet.load(la.save(tmp_path / "k1000.safetensors"))
    data = build_training_data(back, "ladd")
    assert isinstance(data.targets, EncodedTargets)
    held = sum(t.numel() * t.element_size() for t in data.targets.payload.values())
    assert held + data.targets.head.numel() * 4 < 5 * 1024**2  # vs 100 MB of float32 rows
    from plans import train_and_test

    cfg = TrainConfig(
        arch="convnet_d3",
        mode="ladd",
        epochs=1,
        seeds=(0,),
        batch_size=256,
        model_options={"width": 8},
        dsa=False,
    )
    test = _synthetic_test(ds)
    res = train_and_test(back, test, cfg)
    assert res.per_seed and 0.0 <= res.per_seed[0] <= 1.0


def _synthetic_test(ds):
    from ladd.data.imageset import ImageSet, SourceInfo

    g = torch.Generator().manual_seed(1)
    info = SourceInfo(
        name="synthetic",
        image_size=int(ds.images.shape[-1]),
        mean=ds.mean,
        std=ds.std,
        class_names=ds.class_names,
    )
    images = torch.randint(
        0, 256, (50, 3, ds.images.shape[-1], ds.images.shape[-1]), generator=g, dtype=torch.uint8
    )
    return ImageSet(images, torch.arange(50), info, "test")


def test_file_codec_reads_the_codec_from_the_header_alone(labelled, tmp_path):
    from ladd.sets.augmented import file_codec

    _, _, la = labelled
    assert file_codec(la.save(tmp_path / "a.safetensors", codec="topk:2,uint8")) == (
        "topk:2,uint8,uniform"
    )
    assert file_codec(la.save(tmp_path / "b.safetensors", codec="float16")) == "float16"
    plain = tmp_path / "plain.pt"
    torch.save(torch.zeros(2, 3, 4, 4), plain)
    assert file_codec(plain) is None and file_codec(tmp_path / "missing") is None


def test_images_of_8_bit_pixels_are_written_as_uint8_and_read_back_bit_for_bit(labelled, tmp_path):
    """random_real's images are normalise(uint8 pixels): the file keeps the pixels (a quarter of
    the bytes) and reading normalises them again to the very floats; images that are not some
    pixels' normalisation stay float32."""
    _, _, la = labelled
    path = la.save(tmp_path / "la.safetensors", codec="topk:3,uint8")
    tensors = _tensors(path)
    assert tensors["images"].dtype == torch.uint8
    assert json.loads(_header(path)["__metadata__"]["ladd_set"])["pixels"] == "uint8"
    assert torch.equal(LabelAugmentedSet.load(path).images, la.images)
    nudged = replace(la, images=la.images + 1e-3)
    path = nudged.save(tmp_path / "float.safetensors", codec="topk:3,uint8")
    assert _tensors(path)["images"].dtype == torch.float32
    assert torch.equal(LabelAugmentedSet.load(path).images, nudged.images)


def test_full_image_soft_labels_are_kept_in_the_dense_labels_codec(labelled, tmp_path):
    """At 1000 classes a float32 full_soft row (4 KB an image) would outweigh top-k dense labels
    (36 B at N = 2): it is written in the set's codec, decoded when read."""
    _, _, la = labelled
    assert la.full_soft is not None
    path = la.save(tmp_path / "la.safetensors", codec="topk:3,uint8")
    tensors = _tensors(path)
    assert "full_soft" not in tensors
    assert {k for k in tensors if k.startswith("full_soft.")} == {
        f"full_soft.{k}" for k in parse_codec("topk:3,uint8").layout(la.num_classes)
    }
    back = LabelAugmentedSet.load(path)
    codec = parse_codec("topk:3,uint8")
    want = codec.decode(codec.encode(la.full_soft.unsqueeze(1)), la.num_classes)[:, 0]
    assert torch.equal(back.full_soft, want)
    assert (back.full_soft - la.full_soft).abs().max() <= codec.max_abs_error(la.num_classes) + 1e-6
    float_path = la.save(tmp_path / "f32.safetensors", codec="float32")
    assert torch.equal(LabelAugmentedSet.load(float_path).full_soft, la.full_soft.float())


def test_uint8_images_the_metadata_does_not_announce_are_refused(labelled, tmp_path):
    _, _, la = labelled
    path = la.save(tmp_path / "la.safetensors", codec="topk:3,uint8")

    def drop(meta):
        del meta["pixels"]

    bad = _rewrite(path, tmp_path / "bad.safetensors", meta_edit=drop)
    with pytest.raises(LabelAugmentedFileError, match="images are uint8 but the metadata"):
        LabelAugmentedSet.load(bad)
