"""Issue 25: what a careful user trips on when reading other tools' sets (items 2-5).

Each fixture is written the way the upstream code writes its files (the docstrings name the
file and line); each test failed on the readers before the fix: float labels taken as DATM's
slots whatever they say, GLaD's test images normalised with the set's mean, RDED's CIFAR sets
with CIFAR statistics, no `num_classes` reading field, and messages that pointed the wrong way.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from ladd.data import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageSet,
    normalise,
    source_info,
    to_uint8,
)
from ladd.deploy import eval_inputs
from ladd.sets import (
    GLAD_MEAN,
    DistilledFileError,
    SetOptionError,
    load_set,
    read_options,
)

K, IPC = 10, 2


def class_major(num_classes: int = K, ipc: int = IPC) -> torch.Tensor:
    """label_syn as MTT distill.py:111 and DATM distill/DATM.py:133 build it: [0,0,1,1,...]."""
    return torch.arange(num_classes).repeat_interleave(ipc)


def seeded_pixels(n: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)


def save_run(folder: Path, images: torch.Tensor, labels: torch.Tensor, lr=None) -> Path:
    """The run folder MTT writes (distill.py:242-243: torch.save of images_best.pt and
    labels_best.pt) and DATM writes under Normal/ (distill/DATM.py:402-404, with lr_best.pt)."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(images.cpu(), folder / "images_best.pt")
    torch.save(labels.cpu(), folder / "labels_best.pt")
    if lr is not None:
        torch.save(lr.detach().cpu(), folder / "lr_best.pt")
    return folder


def cifar10_images(n: int = K * IPC, seed: int = 0) -> torch.Tensor:
    """ToTensor() + Normalize with CIFAR-10's statistics (mtt-distillation utils.py:56-61)."""
    return TF.normalize(seeded_pixels(n, 32, seed).float() / 255, CIFAR10_MEAN, CIFAR10_STD)


def shuffled_classes(seed: int = 3) -> torch.Tensor:
    """20 labels, 2 per class, in an order that differs from the class-major slots in most rows."""
    g = torch.Generator().manual_seed(seed)
    y = class_major()[torch.randperm(K * IPC, generator=g)]
    assert int((y != class_major()).sum()) > K * IPC // 2
    return y


# ------------------------------------------------------------------ item 2: one label rule


def test_one_hot_labels_in_shuffled_order_keep_their_classes_in_every_reader(tmp_path):
    """MTT's run-folder layout (distill.py:242-243) with one-hot float labels_best.pt in shuffled
    order: each row's class, not DATM's class-major slot (which got 19 of 20 wrong before); the
    dict .pt reader reads the same tensor to the same labels."""
    y = shuffled_classes()
    one_hot = torch.nn.functional.one_hot(y, K).float()
    run = save_run(tmp_path / "run", cifar10_images(), one_hot)
    ds = load_set(run, source="cifar10")
    assert torch.equal(ds.labels, y) and torch.equal(ds.soft_labels, one_hot)
    assert any("one-hot" in n for n in ds.notes) and not ds.warnings
    torch.save({"images": cifar10_images(), "labels": one_hot}, tmp_path / "set.pt")
    as_dict = load_set(tmp_path / "set.pt", source="cifar10")
    assert torch.equal(as_dict.labels, y) and any("one-hot" in n for n in as_dict.notes)


def test_datm_learned_logits_keep_their_slots_and_say_so(tmp_path):
    """DATM: label_syn starts class-major (distill/DATM.py:133), becomes the expert's logits on
    the images (:324), is learned, and saved as float labels_best.pt with lr_best.pt under
    Normal/ (:402-404). One row drifted to another class: the slot stays, the note says which
    rule gave the hard labels."""
    slots = class_major()
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(K * IPC, K, generator=g) + 5 * torch.nn.functional.one_hot(slots, K)
    logits[5, 9] = 30.0  # row 5 (class 2) drifted
    normal = save_run(tmp_path / "run" / "Normal", cifar10_images(), logits, torch.tensor(0.01))
    ds = load_set(normal, source="cifar10")
    assert ds.format == "datm" and torch.equal(ds.labels, slots)
    (note,) = [n for n in ds.notes if "slots" in n]
    assert "learned labels" in note and "1 of 20" in note
    assert not ds.warnings


def test_float_labels_that_contradict_the_slots_take_their_argmax_with_a_warning(tmp_path):
    """Float logits in a DATM folder whose argmax disagrees with DATM's class-major order in
    most rows are not in DATM's order: hard labels are the argmax, and a warning says so."""
    y = shuffled_classes(seed=4)
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(K * IPC, K, generator=g) + 6 * torch.nn.functional.one_hot(y, K)
    ds = load_set(save_run(tmp_path / "Normal", cifar10_images(), logits), source="cifar10")
    assert torch.equal(ds.labels, y)
    assert any("contradicts DATM's class-major slots" in w for w in ds.warnings)


def test_ddranking_keeps_its_class_major_labels_but_warns_when_the_argmax_disagrees(tmp_path):
    """DD-Ranking gives hard labels class-major whatever labels.pt holds (ddranking/metrics/
    soft_label.py:505-506): the slots stay, and a warning says that most rows' argmax
    contradicts them."""
    y = shuffled_classes(seed=5)
    folder = tmp_path / "DATM" / "CIFAR10" / "IPC2"
    folder.mkdir(parents=True)
    torch.save(cifar10_images(), folder / "images.pt")
    torch.save(
        torch.randn(K * IPC, K) + 6 * torch.nn.functional.one_hot(y, K), folder / "labels.pt"
    )
    ds = load_set(folder, source="cifar10")
    assert torch.equal(ds.labels, class_major())
    assert any("as DD-Ranking assigns them" in w for w in ds.warnings)


def test_soft_labels_with_tied_maxima_are_warned_about(tmp_path):
    """Uniform soft labels have no largest class: the first is taken, and a warning says so."""
    torch.save(
        {"images": cifar10_images(), "soft_labels": torch.full((K * IPC, K), 1.0 / K)},
        tmp_path / "set.pt",
    )
    with pytest.warns(UserWarning, match="uneven classes"):  # every row's first class: 0
        ds = load_set(tmp_path / "set.pt", source="cifar10")
    assert any("20 of 20 rows" in w and "tied" in w for w in ds.warnings)


# ------------------------------------------------------------------ item 3: the test images' space


def glad_run(tmp_path: Path, size: int, classes: int = K) -> Path:
    """GLaD's generated images: (G(w) + 1) / 2, then (im - config.mean) / config.std with GLaD's
    mean (0.4377, 0.4438, 0.4728) and ImageNet's std (glad utils.py:87-88, glad_utils.py:310,
    :324-341), saved as MTT does (glad_utils.py:370-371)."""
    ipc = max(1, K * IPC // classes)
    im = seeded_pixels(classes * ipc, size, seed=7).float() / 255
    image_syn = TF.normalize(im, GLAD_MEAN, IMAGENET_STD)
    return save_run(tmp_path / "glad", image_syn, class_major(classes, ipc))


def real_test(name: str, size: int) -> ImageSet:
    info = source_info(name, size)
    return ImageSet(seeded_pixels(6, size, seed=8), torch.zeros(6, dtype=torch.long), info, "test")


@pytest.mark.parametrize(
    ("source", "size", "mean", "std", "line"),
    [
        # ImageNet subsets: ToTensor + Normalize(ImageNet's) for train and val (utils.py:150-166)
        ("imagenette", 128, IMAGENET_MEAN, IMAGENET_STD, "utils.py:150-160"),
        # CIFAR-100 outside pixel space: mean 0.5 / std 0.5 (utils.py:125-133)
        ("cifar100", 32, (0.5,) * 3, (0.5,) * 3, "utils.py:125-133"),
    ],
)
def test_glad_sets_are_tested_as_glads_test_loader_normalises(
    tmp_path, source, size, mean, std, line
):
    """GLaD's get_dataset (georgecazenavette/glad utils.py:94-184) builds its test loader
    (:181) with the dataset's own transform while the generated images keep GLaD's mean: LADD
    tests on what GLaD tests on, and says so."""
    classes = source_info(source, size).num_classes
    ds = load_set(glad_run(tmp_path, size, classes), source=source, format="glad")
    assert ds.mean == GLAD_MEAN and ds.std == IMAGENET_STD  # the set's own space is unchanged
    test = real_test(source, size)
    x = eval_inputs(ds, test, torch.device("cpu"))
    assert torch.allclose(x, normalise(test.images, mean, std), atol=1e-6)
    d = ds.describe()
    assert d["test_mean"] == pytest.approx(list(mean)) and d["test_std"] == pytest.approx(list(std))
    assert any(line in n for n in ds.notes)
    # written by LADD and read back, the test statistics travel with the set
    back = load_set(ds.save_mtt(tmp_path / "copy"))
    assert back.test_mean == pytest.approx(mean) and back.test_std == pytest.approx(std)
    assert torch.allclose(eval_inputs(back, test, torch.device("cpu")), x, atol=1e-6)


def test_glad_cifar10_sets_are_tested_with_cifar10_statistics(tmp_path):
    """GLaD's CIFAR-10 branch sets config.mean/std to CIFAR-10's (utils.py:105-109) and tests
    with the same transform (:114-116): set and test images share one space."""
    image_syn = TF.normalize(seeded_pixels(K * IPC, 32).float() / 255, CIFAR10_MEAN, CIFAR10_STD)
    run = save_run(tmp_path / "glad10", image_syn, class_major())
    ds = load_set(run, source="cifar10", format="glad")
    assert ds.mean == CIFAR10_MEAN and ds.test_mean is None
    test = real_test("cifar10", 32)
    x = eval_inputs(ds, test, torch.device("cpu"))
    assert torch.allclose(x, normalise(test.images, CIFAR10_MEAN, CIFAR10_STD), atol=1e-6)


def test_a_labeler_trained_as_glad_tests_is_accepted_for_a_glad_imagenette_set(tmp_path):
    """The labeler-mismatch refusal agrees with GLaD's evaluation: a labeler trained on
    ImageNette normalised with ImageNet's statistics sees the space GLaD tests the set in."""
    from types import SimpleNamespace

    from ladd.dense import check_input_space

    ds = load_set(glad_run(tmp_path, 128), source="imagenette", format="glad")
    meta = SimpleNamespace(
        mean=IMAGENET_MEAN, std=IMAGENET_STD, zca=False, image_size=128, num_classes=K
    )
    assert check_input_space(ds, meta) == []


def save_rded(root: Path, classes: int, ipc: int, size: int = 32) -> dict:
    """RDED's synthesize/main.py:61-69: {syn_data_path}/{class:05d}/class{class:05d}_id{i:05d}.jpg."""
    pixels = {}
    for c in range(classes):
        (root / f"{c:05d}").mkdir(parents=True)
        for i in range(ipc):
            array = seeded_pixels(1, size, seed=100 * c + i)[0]
            Image.fromarray(array.permute(1, 2, 0).numpy()).save(
                root / f"{c:05d}" / f"class{c:05d}_id{i:05d}.jpg"
            )
            pixels[(c, i)] = array
    return pixels


def test_rded_cifar_folders_are_normalised_and_tested_with_imagenet_statistics(tmp_path):
    """RDED's validation/main.py:111-113 normalises with ImageNet's statistics, applied to the
    distilled images (:126) and to the validation split (:157), for CIFAR too."""
    save_rded(tmp_path / "rded", K, 1)
    ds = load_set(tmp_path / "rded", source="cifar10")
    assert ds.format == "rded" and ds.mean == IMAGENET_MEAN and ds.std == IMAGENET_STD
    assert ds.labels.tolist() == list(range(K))
    test = real_test("cifar10", 32)
    x = eval_inputs(ds, test, torch.device("cpu"))
    assert torch.allclose(x, normalise(test.images, IMAGENET_MEAN, IMAGENET_STD), atol=1e-6)
    assert any("validation/main.py:111-113" in n for n in ds.notes)
    # --format imagefolder reads the same folder as plain class folders (the source's statistics)
    plain = load_set(tmp_path / "rded", source="cifar10", format="imagefolder")
    assert plain.format == "imagefolder" and plain.mean == CIFAR10_MEAN
    assert torch.equal(
        to_uint8(plain.images, plain.mean, plain.std), to_uint8(ds.images, ds.mean, ds.std)
    )


def test_sre2l_names_are_not_taken_for_rded(tmp_path):
    """SRe2L's new000/class000_id000.jpg (three digits) stays a plain image folder."""
    for c in range(K):
        (tmp_path / "sre2l" / f"new{c:03d}").mkdir(parents=True)
        array = seeded_pixels(1, 32, seed=c)[0].permute(1, 2, 0).numpy()
        Image.fromarray(array).save(tmp_path / "sre2l" / f"new{c:03d}" / f"class{c:03d}_id000.jpg")
    ds = load_set(tmp_path / "sre2l", source="cifar10")
    assert ds.format == "imagefolder" and ds.mean == CIFAR10_MEAN


# ------------------------------------------------------------------ item 4: a bare tensor


def test_a_bare_tensor_reads_with_the_num_classes_reading_field(tmp_path):
    """docs/formats.md's own example: a bare [M, C, H, W] tensor with --mean/--std, now with
    the class count (read_options' num_classes, the CLI's --num-classes)."""
    torch.save(cifar10_images(), tmp_path / "set.pt")
    with pytest.raises(DistilledFileError, match="num_classes"):
        load_set(tmp_path / "set.pt", **read_options(mean="0.5,0.5,0.5", std="0.25,0.25,0.25"))
    opts = read_options(mean="0.5,0.5,0.5", std="0.25,0.25,0.25", num_classes=K)
    assert opts["num_classes"] == K
    ds = load_set(tmp_path / "set.pt", **opts)
    assert ds.labels.tolist() == class_major().tolist() and ds.num_classes == K


@pytest.mark.parametrize("bad", [0, -3, 2.5, "ten", True])
def test_num_classes_must_be_a_positive_whole_number(bad):
    with pytest.raises(SetOptionError, match="positive whole number") as info:
        read_options(num_classes=bad)
    assert info.value.field == "num_classes"


# ------------------------------------------------------------------ item 5: messages


def test_channels_last_images_are_named_as_such(tmp_path):
    """A [M, H, W, C] tensor (numpy's image order) said "images are 32x3"."""
    torch.save(cifar10_images().permute(0, 2, 3, 1).contiguous(), tmp_path / "hwc.pt")
    with pytest.raises(DistilledFileError) as info:
        load_set(tmp_path / "hwc.pt", source="cifar10")
    message = str(info.value)
    assert "channels-last [M, H, W, C]" in message and "[M, C, H, W]" in message
    assert "(20, 32, 32, 3)" in message


def test_a_datm_run_folder_points_to_its_normal_subfolder(tmp_path):
    """DATM saves under logged_files/<dataset>/<ipc>/<model>/<run>/Normal/ (distill/DATM.py:
    392-404); pointed at <run>, the message names Normal/ instead of "no class folders"."""
    run = tmp_path / "logged_files" / "CIFAR10" / "2" / "ConvNet" / "run"
    save_run(run / "Normal", cifar10_images(), torch.randn(K * IPC, K), torch.tensor(0.01))
    with pytest.raises(DistilledFileError) as info:
        load_set(run, source="cifar10")
    message = str(info.value)
    assert "Normal/" in message and "DATM" in message
    assert re.search(re.escape(str(run / "Normal")) + r" instead", message)


def test_a_folder_without_sets_or_class_folders_still_says_so(tmp_path):
    (tmp_path / "empty" / "nothing").mkdir(parents=True)
    with pytest.raises(DistilledFileError, match="no class folders"):
        load_set(tmp_path / "empty", source="cifar10")


def test_a_label_augmented_glad_set_keeps_glads_test_statistics(tmp_path):
    """Labelling a GLaD ImageNette set keeps the test space GLaD's evaluation uses (its
    `glad/utils.py` test transform, ImageNet's statistics: lines 150-160): the label-augmented
    file records test_mean/test_std, and a student of the file is tested in that space."""
    from ladd.dense import augment
    from ladd.labeler import Labeler, LabelerMeta
    from ladd.models import create_model
    from ladd.sets import LabelAugmentedSet

    ds = load_set(glad_run(tmp_path, 32), source="imagenette", format="glad")
    assert ds.test_mean == IMAGENET_MEAN and ds.mean != IMAGENET_MEAN
    torch.manual_seed(0)
    model = create_model("convnet_d3", K, 32, width=8).eval()
    meta = LabelerMeta(
        arch="convnet_d3",
        spec=model.spec.to_dict(),
        source="imagenette",
        epoch=1,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        class_names=tuple(ds.class_names),
        seed=0,
        test_accuracy=0.0,
        image_size=32,
    )
    la = augment(
        ds, Labeler(model, meta), n=2, r=0.75, device="cpu", codec=None
    )  # accepted: same space
    back = LabelAugmentedSet.load(la.save(tmp_path / "la.safetensors"))
    assert back.test_mean == IMAGENET_MEAN and back.test_std == IMAGENET_STD
    assert back.to_distilled().test_mean == IMAGENET_MEAN
    test = ImageSet(
        seeded_pixels(4, 32, seed=9), torch.arange(4), source_info("imagenette"), "test"
    )
    x = eval_inputs(back, test, torch.device("cpu"))
    assert torch.allclose(x, normalise(test.images, IMAGENET_MEAN, IMAGENET_STD), atol=1e-6)
