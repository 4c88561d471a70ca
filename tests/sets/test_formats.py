"""Every public distiller's output, saved the way its code saves it, read as its authors meant it.

Fixtures are built here at run time (10 classes x IPC 2 unless a source needs more classes),
with the original code's calls reproduced line for line; each test's docstring names the file
and line it follows. Pixels are real CIFAR-10 training images when LADD_SHARED_DATA holds the
archive (else seeded random pixels, which test the same arithmetic); ZCA-space fixtures, which
need the real train split, are in tests/data/test_zca_kornia.py.
"""

from __future__ import annotations

import copy
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF

from ladd.data import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    IMAGENET_STD,
    class_balanced_indices,
    load_source,
    source_info,
    to_uint8,
)
from ladd.sets import (
    GLAD_MEAN,
    UNKNOWN_NORMALISATION,
    DistilledFileError,
    DistilledSet,
    LabelAugmentedSet,
    load_distilled,
    load_set,
)

K, IPC = 10, 2


@pytest.fixture(scope="module")
def pixels() -> torch.Tensor:
    """uint8 (20, 3, 32, 32), class-major: 2 real CIFAR-10 train images per class if the
    shared archive is there, else seeded random pixels."""
    shared = os.environ.get("LADD_SHARED_DATA")
    if shared and (Path(shared) / "cifar10-jpg.tar.xz").is_file():
        train = load_source("cifar10", "train")
        return train.images[class_balanced_indices(train.labels, IPC, K, seed=0)].clone()
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (K * IPC, 3, 32, 32), dtype=torch.uint8, generator=g)


def uniform_pixels(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """uint8 (n, 3, size, size) covering 0..255 in every channel (values fill [0, 1])."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    x[0, :, 0, 0], x[0, :, 0, 1] = 0, 255
    return x


def to_tensor_normalize(pixels: torch.Tensor, mean, std) -> torch.Tensor:
    """torchvision's ToTensor() then Normalize(mean, std), as every get_dataset here does."""
    return TF.normalize(pixels.float() / 255, list(mean), list(std))


def class_major_label_syn(num_classes: int, ipc: int) -> torch.Tensor:
    """label_syn as MTT distill.py:111 / DATM distill/DATM.py:133 / DC main.py:89 build it."""
    rows = np.array([np.ones(ipc, dtype=np.int_) * i for i in range(num_classes)])
    return torch.tensor(rows, dtype=torch.long, requires_grad=False).view(-1)


def save_mtt_run(folder: Path, image_syn: torch.Tensor, label_syn: torch.Tensor) -> Path:
    """mtt-distillation distill.py:242-243 (GLaD glad_utils.py:370-371 is the same)."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(image_syn.cpu(), folder / "images_best.pt")
    torch.save(label_syn.cpu(), folder / "labels_best.pt")
    return folder


# ------------------------------------------------------------------ MTT


def test_mtt_cifar10_folder_gives_back_pixels_labels_and_ipc(tmp_path, pixels):
    """MTT on CIFAR-10 without ZCA: utils.py:56-61 (ToTensor + Normalize with CIFAR-10's
    statistics), distill.py:111 (class-major label_syn), :242-243 (torch.save)."""
    image_syn = to_tensor_normalize(pixels, CIFAR10_MEAN, CIFAR10_STD)
    run = save_mtt_run(tmp_path / "run", image_syn, class_major_label_syn(K, IPC))
    ds = load_set(run, source="cifar10")
    assert ds.format == "mtt" and ds.lr is None and ds.soft_labels is None and ds.zca is None
    assert torch.equal(to_uint8(ds.pixel_images(), ds.mean, ds.std), pixels)
    assert ds.labels.tolist() == [k for k in range(K) for _ in range(IPC)]
    assert ds.ipc_per_class() == [IPC] * K and ds.class_names[0] == "airplane"
    assert not ds.warnings  # the applied statistics fit the values


def test_mtt_cifar100_folder_uses_cifar10_statistics_as_mtt_does(tmp_path):
    """MTT's CIFAR-100 branch normalises with CIFAR-10's statistics (utils.py:118-128); so do
    DATM (utils/utils_baseline.py:175-180) and DD-Ranking (ddranking/utils/data.py:81-86).
    100 classes x IPC 1: the source fixes the class count."""
    px = uniform_pixels(100, 32)
    run = save_mtt_run(
        tmp_path / "run",
        to_tensor_normalize(px, CIFAR10_MEAN, CIFAR10_STD),
        class_major_label_syn(100, 1),
    )
    ds = load_set(run, source="cifar100")
    assert ds.mean == CIFAR10_MEAN and ds.std == CIFAR10_STD
    assert torch.equal(to_uint8(ds.images, ds.mean, ds.std), px)
    assert any("CIFAR-10's statistics" in n for n in ds.notes) and not ds.warnings
    # Item 10: forcing CIFAR-100's statistics recovers pixels -0.14..1.18 -> a warning.
    forced = load_set(run, source="cifar100", mean=CIFAR100_MEAN, std=CIFAR100_STD)
    (warning,) = forced.warnings
    assert "fit CIFAR-10 statistics" in warning and "-0.1" in warning


def test_value_range_warning_stays_silent_when_nothing_fits(tmp_path):
    """A trained set whose values left [0, 1] under every known normalisation: no guess."""
    g = torch.Generator().manual_seed(1)
    run = save_mtt_run(
        tmp_path / "run", 3 * torch.randn(20, 3, 32, 32, generator=g), class_major_label_syn(K, 2)
    )
    assert not load_set(run, source="cifar10").warnings


# ------------------------------------------------------------------ DATM


def test_datm_folder_keeps_logits_and_lr_with_class_major_slots(tmp_path, pixels):
    """DATM distill/DATM.py:133 (label_syn class-major), :324 (label_syn becomes the learned
    logits), :402-404 (torch.save of images_best.pt, labels_best.pt, lr_best.pt under Normal/).
    Two rows' logits drifted to another class: the slots, not the argmax, give hard labels."""
    image_syn = to_tensor_normalize(pixels, CIFAR10_MEAN, CIFAR10_STD)
    slots = class_major_label_syn(K, IPC)
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(K * IPC, K, generator=g) + 4 * torch.nn.functional.one_hot(slots, K)
    logits[3, 7] = logits[16, 2] = 20.0  # rows 3 (class 1) and 16 (class 8) drifted
    label_syn = copy.deepcopy(logits.detach()).requires_grad_(True)
    syn_lr = torch.tensor(0.0123).requires_grad_(True)
    normal = tmp_path / "logged_files" / "CIFAR10" / "2" / "ConvNet" / "run" / "Normal"
    normal.mkdir(parents=True)
    torch.save(image_syn.cpu(), normal / "images_best.pt")
    torch.save(label_syn.cpu(), normal / "labels_best.pt")
    torch.save(syn_lr.detach().cpu(), normal / "lr_best.pt")

    ds = load_set(normal, source="cifar10")
    assert ds.format == "datm" and ds.lr == pytest.approx(0.0123)
    assert torch.equal(ds.soft_labels, logits) and torch.equal(ds.labels, slots)
    assert ds.ipc_per_class() == [IPC] * K and ds.ipc == IPC
    assert any("2 of 20" in n for n in ds.notes)
    assert torch.equal(to_uint8(ds.images, ds.mean, ds.std), pixels)


# ------------------------------------------------------------------ DC / DSA / DM


def dc_accuracy(correct: int, total: int) -> np.float64:
    """What DC's utils.py epoch() returns: np.sum(np.equal(...)) summed, then / num_exp."""
    acc_avg = 0
    acc_avg += np.sum(np.equal(np.arange(total) < correct, True))
    acc_avg /= total
    return acc_avg


def save_dc_result(path: Path, experiments: list[torch.Tensor], label_syn: torch.Tensor) -> None:
    """DatasetCondensation main.py:52-56, :224-225 (main_DM.py:203-204 is the same): one
    [image_syn, label_syn] per experiment, accuracies as numpy float64 scalars."""
    accs_all_exps = {"ConvNet": [dc_accuracy(c, 100) for c in (41, 43, 45)]}
    data_save = []
    for image_syn in experiments:
        data_save.append(
            [copy.deepcopy(image_syn.detach().cpu()), copy.deepcopy(label_syn.detach().cpu())]
        )
        torch.save({"data": data_save, "accs_all_exps": accs_all_exps}, path)


def test_dc_result_file_reads_the_last_or_the_chosen_experiment(tmp_path, pixels):
    """res_<method>_<dataset>_<model>_<ipc>ipc.pt (main.py:225) with numpy scalars inside: read
    through the allow-list; the last experiment by default, --experiment K picks another."""
    base = to_tensor_normalize(pixels, CIFAR10_MEAN, CIFAR10_STD)
    experiments = [base + 0.01 * e for e in range(3)]
    path = tmp_path / "res_DM_CIFAR10_ConvNet_2ipc.pt"
    save_dc_result(path, experiments, class_major_label_syn(K, IPC))
    assert isinstance(dc_accuracy(41, 100), np.float64)  # the fixture holds numpy scalars

    last = load_set(path, source="cifar10")
    assert last.format == "dc" and torch.equal(last.images, experiments[2])
    assert last.labels.tolist() == class_major_label_syn(K, IPC).tolist()
    assert any("experiment 2 of 3" in n for n in last.notes)
    assert any("ConvNet 43.00% +- 1.63% (3 evaluations)" in n for n in last.notes)
    first = load_set(path, source="cifar10", experiment=0)
    assert torch.equal(first.images, experiments[0])
    assert torch.equal(to_uint8(first.images, first.mean, first.std), pixels)
    with pytest.raises(DistilledFileError, match="experiment 3 does not exist.*holds 3"):
        load_set(path, source="cifar10", experiment=3)
    renamed = tmp_path / "my result"  # names are the user's: content decides
    renamed.write_bytes(path.read_bytes())
    assert load_set(renamed, source="cifar10").format == "dc"


def test_dc_cifar100_uses_dc_statistics(tmp_path):
    """DC's own CIFAR-100 statistics (utils.py:61-62), not CIFAR-10's as MTT."""
    px = uniform_pixels(100, 32)
    path = tmp_path / "res_DC_CIFAR100_ConvNet_1ipc.pt"
    dc_stats = ((0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762))
    save_dc_result(path, [to_tensor_normalize(px, *dc_stats)], class_major_label_syn(100, 1))
    ds = load_set(path, source="cifar100")
    assert (ds.mean, ds.std) == dc_stats and not ds.warnings
    assert torch.equal(to_uint8(ds.images, ds.mean, ds.std), px)


def test_dc_result_written_under_numpy_1_loads_and_other_numpy_objects_do_not(tmp_path):
    """numpy 1 pickled its scalars as numpy.core.multiarray.scalar (numpy 2: numpy._core):
    both spellings are allowed. Arrays (numpy's _reconstruct) stay refused."""
    images, labels = torch.randn(20, 3, 8, 8), class_major_label_syn(K, IPC)
    legacy = tmp_path / "res_legacy.pt"
    torch.save(
        {"data": [[images, labels]], "accs_all_exps": {"ConvNet": [np.float64(0.5)]}},
        legacy,
        _use_new_zipfile_serialization=False,
    )
    data = legacy.read_bytes()
    assert b"numpy._core.multiarray\nscalar" in data
    legacy.write_bytes(
        data.replace(b"numpy._core.multiarray\nscalar", b"numpy.core.multiarray\nscalar")
    )
    ds = load_set(legacy, mean=(0,) * 3, std=(1,) * 3, num_classes=K)
    assert ds.format == "dc" and torch.equal(ds.images, images)

    arrays = tmp_path / "res_arrays.pt"
    torch.save({"data": [[images, labels]], "accs_all_exps": {"ConvNet": np.zeros(3)}}, arrays)
    with pytest.raises(DistilledFileError, match="refused.*_reconstruct"):
        load_set(arrays, mean=(0,) * 3, std=(1,) * 3)


def test_experiment_is_refused_for_other_formats(tmp_path, pixels):
    run = save_mtt_run(tmp_path / "run", torch.randn(20, 3, 8, 8), class_major_label_syn(K, 2))
    with pytest.raises(DistilledFileError, match="experiment"):
        load_set(run, source="shapes", experiment=0)


# ------------------------------------------------------------------ DD-Ranking


def save_ddranking(folder: Path, images, soft_labels=None, lr=None) -> Path:
    """The folder DD-Ranking's demos load (demo_soft.py:14-16): images.pt, labels.pt, lr.pt."""
    folder.mkdir(parents=True)
    torch.save(images, folder / "images.pt")
    if soft_labels is not None:
        torch.save(soft_labels, folder / "labels.pt")
    if lr is not None:
        torch.save(lr, folder / "lr.pt")
    return folder


def test_ddranking_folder_keeps_soft_labels_and_lr_whichever_path_is_given(tmp_path, pixels):
    """DD-Ranking folder with DATM's logits and lr; hard labels class-major as DD-Ranking
    assigns them (ddranking/metrics/soft_label.py:505-506)."""
    images = to_tensor_normalize(pixels, CIFAR10_MEAN, CIFAR10_STD)
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(20, K, generator=g)
    folder = save_ddranking(
        tmp_path / "DATM" / "CIFAR10" / "IPC2", images, logits, torch.tensor(0.02)
    )
    for path in (folder, folder / "images.pt"):
        ds = load_set(path, source="cifar10")
        assert ds.format == "ddranking" and ds.lr == pytest.approx(0.02)
        assert torch.equal(ds.soft_labels, logits)
        assert ds.labels.tolist() == class_major_label_syn(K, IPC).tolist()
        assert torch.equal(to_uint8(ds.images, ds.mean, ds.std), pixels)


def test_ddranking_hard_label_folder_and_cifar100_statistics(tmp_path):
    """Only images.pt (hard-label methods: class-major, hard_label.py:330); CIFAR-100 with
    CIFAR-10's statistics (ddranking/utils/data.py:81-86)."""
    px = uniform_pixels(100, 32)
    folder = save_ddranking(tmp_path / "dm", to_tensor_normalize(px, CIFAR10_MEAN, CIFAR10_STD))
    ds = load_set(folder, source="cifar100")
    assert ds.soft_labels is None and ds.lr is None and ds.ipc_per_class() == [1] * 100
    assert ds.mean == CIFAR10_MEAN and torch.equal(to_uint8(ds.images, ds.mean, ds.std), px)


# ------------------------------------------------------------------ GLaD


def test_glad_imagenet_subset_uses_glads_mean(tmp_path):
    """GLaD normalises generated images with config.mean = (0.4377, 0.4438, 0.4728) and
    ImageNet's std (utils.py:87-88, glad_utils.py:310 and :324-325), saved like MTT
    (glad_utils.py:370-371). Read as plain MTT with ImageNet's mean, a warning says so."""
    px = uniform_pixels(K * IPC, 128)
    im = px.float() / 255  # (G(latents) + 1) / 2
    image_syn = (im - torch.tensor(GLAD_MEAN).reshape(1, 3, 1, 1)) / torch.tensor(
        IMAGENET_STD
    ).reshape(1, 3, 1, 1)
    run = save_mtt_run(tmp_path / "glad", image_syn, class_major_label_syn(K, IPC))
    ds = load_set(run, source="imagenette", format="glad")
    assert ds.format == "glad" and ds.mean == GLAD_MEAN and ds.std == IMAGENET_STD
    assert torch.equal(to_uint8(ds.images, ds.mean, ds.std), px) and not ds.warnings
    as_mtt = load_set(run, source="imagenette")
    assert as_mtt.format == "mtt"
    assert any("fit GLaD's mean with ImageNet's std" in w for w in as_mtt.warnings)


def test_glad_result_file_with_format_glad(tmp_path):
    """GLaD's res_<dataset>_<model>_<ipc>ipc.pt (distill_mtt.py:368-369), DC's layout."""
    px = uniform_pixels(K * IPC, 128, seed=3)
    image_syn = TF.normalize(px.float() / 255, list(GLAD_MEAN), list(IMAGENET_STD))
    path = tmp_path / "res_imagenet-a_ConvNetD5_2ipc.pt"
    torch.save({"data": [[image_syn, class_major_label_syn(K, IPC)]], "accs_all_exps": {}}, path)
    ds = load_set(path, source="imagenette", format="glad")
    assert ds.format == "glad" and torch.equal(to_uint8(ds.images, ds.mean, ds.std), px)


# ------------------------------------------------------------------ SRe2L, MTT's view copy


def test_sre2l_fkd_soft_label_batches_are_explained(tmp_path):
    """SRe2L relabel/generate_soft_label.py:211-224: [coords (B, 4), flip (B,), mix_index,
    mix_lam, mix_bbox (numpy ints from utils_fkd.py:195-200), output (B, K) fp16] per batch,
    in batch order of a RandomSampler seeded with --fkd-seed (:190-192)."""
    batch = 4
    coords = torch.rand(batch, 4)
    flip = torch.rand(batch) < 0.5
    mix_index = torch.randperm(batch)
    mix_lam = np.random.default_rng(0).beta(1.0, 1.0)
    mix_bbox = [
        np.clip(v, 0, 224) for v in (np.int64(10), np.int64(20), np.int64(90), np.int64(100))
    ]
    output = torch.randn(batch, 1000).half()
    epoch = tmp_path / "FKD_cutmix_fp16" / "epoch_0"
    epoch.mkdir(parents=True)
    torch.save([coords, flip, mix_index, mix_lam, mix_bbox, output.cpu()], epoch / "batch_0.tar")
    for path in (epoch / "batch_0.tar", epoch.parent):
        with pytest.raises(
            DistilledFileError, match="FKD soft labels.*random crop.*cannot be attached"
        ):
            load_set(path, source="imagenette")


def test_mtt_images_zca_view_is_read_as_pixels_and_said_so(tmp_path, pixels):
    """MTT's images_zca_<it>.pt (distill.py:266-271): zca_trans.inverse_transform of the
    ZCA-space images, i.e. [0, 1] pixels for viewing, not normalised images."""
    path = tmp_path / "images_zca_5000.pt"
    torch.save((pixels.float() / 255).cpu(), path)
    ds = load_set(path, source="cifar10")
    assert ds.mean == (0.0, 0.0, 0.0) and ds.std == (1.0, 1.0, 1.0)
    assert torch.equal(to_uint8(ds.images, ds.mean, ds.std), pixels)
    assert any("inverse-ZCA copy" in n and "--zca" in n for n in ds.notes)


# ------------------------------------------------------------------ describing, naming, options


def test_describing_needs_no_normalisation(tmp_path, pixels):
    """Issue 13 item 8: `ladd info` on a plain MTT folder without --source."""
    image_syn = to_tensor_normalize(pixels, CIFAR10_MEAN, CIFAR10_STD)
    run = save_mtt_run(tmp_path / "run", image_syn, class_major_label_syn(K, IPC))
    with pytest.raises(DistilledFileError, match="--source.*--mean/--std"):
        load_set(run)
    ds = load_set(run, describe_only=True)
    d = ds.describe()
    assert (
        d["normalisation"]
        == UNKNOWN_NORMALISATION
        == ("unknown (give --source or --mean/--std to train on it)")
    )
    assert d["count"] == 20 and d["num_classes"] == K and d["ipc"] == IPC
    assert d["image_size"] == 32 and d["value_min"] == pytest.approx(float(image_syn.min()))
    assert d["mean"] is None and not ds.trainable
    with pytest.raises(DistilledFileError, match="normalisation: unknown"):
        ds.require_trainable()
    with pytest.raises(DistilledFileError, match="unknown"):
        ds.save_mtt(tmp_path / "copy")


def test_a_zca_run_folder_asks_for_its_source(tmp_path):
    """A run folder holding images_zca_<it>.pt is in ZCA space (MTT distill.py:266-271):
    loading it to train needs the source; describing it does not."""
    run = save_mtt_run(
        tmp_path / "run", 0.3 * torch.randn(20, 3, 32, 32), class_major_label_syn(K, 2)
    )
    torch.save(torch.rand(20, 3, 32, 32), run / "images_zca_1000.pt")
    with pytest.raises(DistilledFileError, match="ZCA space.*images_zca_1000.pt.*--source"):
        load_set(run)
    ds = load_set(run, describe_only=True)
    assert any("ZCA space" in n for n in ds.notes) and not ds.trainable


def test_label_augmented_file_is_found_by_content_whatever_its_name(tmp_path):
    """Issue 13 item 9: `ladd augment --out set.ladd` must load wherever a set is expected."""
    info = source_info("shapes")
    dense = torch.full((20, 4, K), 1.0 / K)
    la = LabelAugmentedSet(
        torch.randn(20, 3, 32, 32),
        class_major_label_syn(K, IPC),
        dense,
        2,
        0.75,
        info.class_names,
        info.mean,
        info.std,
        source="shapes",
    )
    path = la.save(tmp_path / "set.ladd")
    back = load_set(path)
    assert isinstance(back, LabelAugmentedSet) and torch.equal(back.dense, dense)
    assert isinstance(load_distilled(path), DistilledSet)
    with pytest.warns(UserWarning, match="ignored mean"):
        load_set(path, mean=(0.1,) * 3)


def test_format_option_is_checked(tmp_path):
    run = save_mtt_run(tmp_path / "run", torch.randn(20, 3, 8, 8), class_major_label_syn(K, 2))
    with pytest.raises(DistilledFileError, match="unknown format 'sre2l'"):
        load_set(run, source="shapes", format="sre2l")
    assert load_set(run, source="shapes", format="dc").format == "dc"


def test_pickled_code_in_a_dc_result_never_runs(tmp_path):
    """The allow-list adds numpy scalars only: a payload beside them is still refused."""
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "res_evil.pt"
    path.write_bytes(pickle.dumps({"data": [[Payload(), None]], "accs_all_exps": {}}))
    with pytest.raises(DistilledFileError, match="refused"):
        load_set(path, source="shapes")
    assert not marker.exists()
