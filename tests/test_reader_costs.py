"""Every reader on a file of a few KB that claims gigabytes (issue #38, class 1).

What a file declares (a zip record's expanded size, a legacy storage's element count, a view's
shape over 4 bytes, a label value, a folder index, an image's aspect ratio, a model spec) no
longer sizes an allocation before it is checked against what the file holds or against a cap
of ladd.limits. All the files run in ONE child process whose address space is capped at what
its imports mapped plus 1 GiB (tests/capped.py): a regression fails there with a MemoryError
instead of taking the machine down, or with a refusal that does not name the cap.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch
from capped import run_capped
from hostile_files import (
    write_elongated_png,
    write_pt_deflate_bomb,
    write_pt_deflate_claim,
    write_pt_legacy_claim,
    write_pt_tensors,
    write_pt_view_claim,
    write_safetensors_claim,
    write_small_png,
)

from ladd.files import save_tensors

SCENARIOS = """
import ladd.labeler, ladd.store, ladd.models.tv
from pathlib import Path
from ladd.data.decode import decode_images, open_rgb
from ladd.data.imagenet1k import EvalTransform

def shape_of(x):
    return tuple(getattr(x, "images", x).shape)

@scenario("pt_deflate_claim")
def _():
    return shape_of(ladd.sets.load_set(PT_DEFLATE_CLAIM, describe_only=True))

@scenario("pt_deflate_bomb")
def _():
    return shape_of(ladd.sets.load_set(PT_DEFLATE_BOMB, describe_only=True))

@scenario("mtt_folder_claim")
def _():
    return shape_of(ladd.sets.load_set(MTT_FOLDER, describe_only=True))

@scenario("pt_legacy_claim")
def _():
    return shape_of(ladd.sets.load_set(PT_LEGACY_CLAIM, describe_only=True))

@scenario("ddranking_legacy_claim")
def _():
    return shape_of(ladd.sets.load_set(DDRANKING_FOLDER, describe_only=True))

@scenario("pt_view_claim")
def _():
    return shape_of(ladd.sets.load_set(PT_VIEW_CLAIM, describe_only=True))

@scenario("dc_view_claim")
def _():
    return shape_of(ladd.sets.load_set(DC_VIEW_CLAIM, describe_only=True))

@scenario("label_value_claim")
def _():
    return shape_of(ladd.sets.load_set(LABEL_CLAIM, describe_only=True))

@scenario("folder_index_claim")
def _():
    return shape_of(ladd.sets.load_set(INDEX_FOLDER, describe_only=True))

@scenario("elongated_png_info")
def _():
    sys.argv = ["ladd", "info", str(ELONGATED_FOLDER), "--source", "shapes"]
    try:
        ladd.cli.main()
    except SystemExit as e:
        return f"exit {e.code}"
    return "exit 0"

@scenario("elongated_png_source")
def _():
    return shape_of(ladd.data.load_source(f"imagefolder:{ELONGATED_FOLDER}", "train",
                                          image_size=32, cache_dir=CACHE))

@scenario("elongated_png_large")
def _():
    return shape_of(decode_images([Path(ELONGATED_PNG)], 32, large=True))

@scenario("elongated_png_zip")
def _():
    return shape_of(ladd.sets.load_set(ELONGATED_ZIP, source="shapes"))

@scenario("elongated_png_eval_transform")
def _():
    return tuple(EvalTransform(224)(open_rgb(Path(ELONGATED_PNG), "x.png")).shape)

@scenario("labeler_spec_claim")
def _():
    return type(ladd.labeler.load_labeler(LABELER_CLAIM)).__name__

@scenario("model_spec_claim")
def _():
    return type(ladd.store.load_model(MODEL_CLAIM)).__name__

@scenario("tv_checkpoint_claim")
def _():
    return type(ladd.models.tv.load_torchvision_checkpoint("tv_resnet18", PT_DEFLATE_CLAIM, 10, 32))

@scenario("width_claim")
def _():
    from ladd.models import create_model
    return type(create_model("convnet_d3", 10, 32, width=300_000)).__name__

@scenario("safetensors_claim")
def _():
    return shape_of(ladd.sets.load_set(SAFETENSORS_CLAIM, describe_only=True))

@scenario("label_augmented_claim")
def _():
    return shape_of(ladd.sets.load_set(LABEL_AUGMENTED_CLAIM, describe_only=True))
"""


def _tiny_state() -> tuple[dict[str, torch.Tensor], dict]:
    from ladd.models import create_model

    model = create_model("convnet_d1", 2, 8, width=2)
    return dict(model.state_dict()), model.spec.to_dict()


def _claiming_spec(spec: dict) -> dict:
    return {**spec, "num_classes": 10**9}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, Path]:
    """The files, each a few KB (the real deflate bomb ~0.5 MB), built here."""
    from ladd.labeler import LABELER_FORMAT, LabelerMeta

    base = tmp_path_factory.mktemp("claims")
    paths: dict[str, Path] = {"CACHE": base / "cache"}
    paths["PT_DEFLATE_CLAIM"] = write_pt_deflate_claim(base / "deflate_claim.pt")
    paths["PT_DEFLATE_BOMB"] = write_pt_deflate_bomb(base / "deflate_bomb.pt")
    mtt = base / "mtt_run"
    write_pt_deflate_claim(mtt / "images_best.pt")
    write_pt_tensors(mtt / "labels_best.pt", torch.arange(2))
    paths["MTT_FOLDER"] = mtt
    paths["PT_LEGACY_CLAIM"] = write_pt_legacy_claim(base / "legacy_claim.pt")
    ddr = base / "ddranking"
    ddr.mkdir()
    write_pt_legacy_claim(ddr / "images.pt")
    paths["DDRANKING_FOLDER"] = ddr
    paths["PT_VIEW_CLAIM"] = write_pt_view_claim(base / "view_claim.pt")
    paths["DC_VIEW_CLAIM"] = write_pt_view_claim(
        base / "res_DM_CIFAR10_ConvNet_10ipc.pt",
        obj=lambda t: {"data": [[t, t]], "accs_all_exps": {}},
    )
    paths["LABEL_CLAIM"] = write_pt_tensors(
        base / "label_claim.pt",
        {"images": torch.zeros(2, 3, 8, 8), "labels": torch.tensor([0, 10**10])},
    )
    index = base / "index_folder"
    write_small_png(index / "class_0" / "a.png")
    write_small_png(index / "class_9999999999" / "a.png")
    paths["INDEX_FOLDER"] = index
    elongated = base / "elongated"
    paths["ELONGATED_PNG"] = write_elongated_png(elongated / "tall" / "bomb.png")
    write_small_png(elongated / "small" / "a.png", side=32)
    paths["ELONGATED_FOLDER"] = elongated
    zipped = base / "elongated.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.write(paths["ELONGATED_PNG"], "set/tall/bomb.png")
        zf.write(elongated / "small" / "a.png", "set/small/a.png")
    paths["ELONGATED_ZIP"] = zipped
    state, spec = _tiny_state()
    meta = LabelerMeta(
        arch="convnet_d1",
        spec=_claiming_spec(spec),
        source="shapes",
        epoch=1,
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
        class_names=("a", "b"),
        seed=0,
        test_accuracy=0.5,
        image_size=8,
    )
    paths["LABELER_CLAIM"] = save_tensors(
        base / "labeler.safetensors",
        state,
        {"ladd_labeler": json.dumps(meta.to_dict()), "format": LABELER_FORMAT},
    )
    paths["MODEL_CLAIM"] = save_tensors(
        base / "model.safetensors",
        state,
        {"ladd_kind": "model", "spec": json.dumps(_claiming_spec(spec))},
    )
    paths["SAFETENSORS_CLAIM"] = write_safetensors_claim(
        base / "claim.safetensors", (10**5, 3, 100, 100), None
    )
    paths["LABEL_AUGMENTED_CLAIM"] = write_safetensors_claim(
        base / "la_claim.safetensors", (10**5, 3, 100, 100), {"ladd_set": "{}"}
    )
    for name, path in paths.items():
        if path.is_file() and name not in ("PT_DEFLATE_BOMB",):
            assert path.stat().st_size < 64 * 1024, (name, path.stat().st_size)
    assert paths["PT_DEFLATE_BOMB"].stat().st_size < 1024**2
    return paths


@pytest.fixture(scope="module")
def costs(hostile) -> dict:
    return run_capped(SCENARIOS, hostile)


def test_the_cap_is_real(costs) -> None:
    assert "error" in costs["allocate_2g"], costs["allocate_2g"]
    assert costs["allocate_100m"]["done"] == "104857600", costs["allocate_100m"]


def _refused(got: dict, *words: str) -> None:
    """A one-line refusal (a ValueError subclass) whose message holds every word."""
    assert "error" in got and got["error"] not in ("MemoryError", "TimeoutError"), got
    assert got["error"].endswith("Error") and "\n" not in got["message"], got
    for word in words:
        assert word in got["message"], (word, got)


@pytest.mark.parametrize(
    "case", ["pt_deflate_claim", "pt_deflate_bomb", "mtt_folder_claim", "tv_checkpoint_claim"]
)
def test_a_torch_zip_record_is_bounded_before_it_is_inflated(costs, case) -> None:
    """A `.pt` is a zip: a compressed record's declared size falls under the archive caps
    before torch.load reads it (issue #38: a 3 MB `.pt` reached several GB). The lying 1 KB
    file (3 GiB declared), the real 0.5 MB bomb (512 MiB), the same file as an MTT run's
    images_best.pt and as a torchvision checkpoint to import: one line naming the ratio cap."""
    _refused(costs[case], "LADD_MAX_ARCHIVE_RATIO")


@pytest.mark.parametrize("case", ["pt_legacy_claim", "ddranking_legacy_claim"])
def test_a_legacy_torch_file_cannot_declare_more_than_it_holds(costs, case) -> None:
    """A legacy (pre-zip) torch file of ~400 bytes whose storage declares 8 GB: torch
    allocated it before reading. Its pickles are scanned first (nothing in them built)."""
    _refused(costs[case], "declares", "holds")


@pytest.mark.parametrize("case", ["pt_view_claim", "dc_view_claim"])
def test_a_view_that_repeats_its_data_is_refused_not_expanded(costs, case) -> None:
    """4 bytes of data viewed as (10^6, 10^6) with stride 0, bare and as a DC result file's
    images: 10^12 elements claimed, which the first check (isfinite) materialised."""
    _refused(costs[case], "LADD_MAX_ARCHIVE_RATIO", "claim")


@pytest.mark.parametrize("case", ["label_value_claim", "folder_index_claim"])
def test_a_class_count_from_a_label_or_folder_index_is_capped(costs, case) -> None:
    """One label of 10^10 (issue #38: grew until MemoryError), and a class folder named
    class_9999999999 (a folder index taken as the class count)."""
    _refused(costs[case], "LADD_MAX_CLASSES")


def test_an_elongated_png_is_resized_within_memory(costs) -> None:
    """A 3 KB PNG of 1 x 1,000,000 pixels (issue #38: `ladd info` asked for 12 GB, the
    resize buffer growing with the aspect ratio): every path that resizes it (the small-image
    decoder through `ladd info` and an imagefolder source, the large-image decoder, inside a
    zip, ImageNet-1K's evaluation transform) resizes its centre instead."""
    assert costs["elongated_png_info"]["done"] == "'exit 0'", costs["elongated_png_info"]
    assert costs["elongated_png_source"]["done"] == "(2, 3, 32, 32)", costs["elongated_png_source"]
    assert costs["elongated_png_large"]["done"] == "(1, 3, 32, 32)", costs["elongated_png_large"]
    assert costs["elongated_png_zip"]["done"] == "(2, 3, 32, 32)", costs["elongated_png_zip"]
    got = costs["elongated_png_eval_transform"]
    assert got["done"] == "(3, 224, 224)", got


@pytest.mark.parametrize("case", ["labeler_spec_claim", "model_spec_claim"])
def test_a_model_spec_must_fit_the_weights_beside_it(costs, case) -> None:
    """A labeler checkpoint and a run's model file of a few KB of weights whose spec claims
    10^9 classes: the model was built (10^9 x features floats) before the weights were
    compared. The spec is built on the meta device and compared first."""
    _refused(costs[case], "do not fit", "spec")


def test_a_width_that_sizes_a_model_is_capped(costs) -> None:
    """`--width 300000` asks for a ConvNet of ~3 TB: refused from a meta-device build."""
    _refused(costs["width_claim"], "LADD_MAX_MODEL_BYTES")


@pytest.mark.parametrize("case", ["safetensors_claim", "label_augmented_claim"])
def test_safetensors_headers_that_claim_more_than_the_file_were_already_refused(
    costs, case
) -> None:
    """Guard (these passed before too): a safetensors header promising 12 GB beside 4 bytes
    is refused as truncated from the header, for the plain and the label-augmented reader."""
    _refused(costs[case], "truncated")
