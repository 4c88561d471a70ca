"""End to end on real CIFAR-10 (CI-sized): labeler -> random-real IPC 10 -> dense labels -> train.

Needs env LADD_SHARED_DATA naming a folder with cifar10-jpg.tar.xz (../shared/data); set
LADD_CACHE_DIR to reuse the decoded cache. Sized for two CPU cores: a narrow ConvNet-D3, a
labeler trained on 500 images per class for a few epochs, short deployments. Measured figures
are printed (run pytest -s to see them).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch
from plans import train_and_test

from ladd.data import load_source
from ladd.dense import augment, set_storage_report
from ladd.labeler import LabelerConfig, load_labeler, train_labeler
from ladd.sets import LabelAugmentedSet, random_real
from ladd.training import TrainConfig

SHARED = os.environ.get("LADD_SHARED_DATA")
pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.slow,
    pytest.mark.skipif(
        not SHARED or not (Path(SHARED) / "cifar10-jpg.tar.xz").is_file(),
        reason="set LADD_SHARED_DATA to a folder holding cifar10-jpg.tar.xz (../shared/data)",
    ),
]

WIDTH = 16  # narrow ConvNet-D3: the full protocol belongs on a GPU


def test_cifar10_labeler_dense_labels_baseline_and_ladd(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    train = load_source("cifar10", "train", limit_per_class=500)
    test = load_source("cifar10", "test")
    assert len(test) == 10_000

    cfg = LabelerConfig(
        epochs=5, save_at=(5,), batch_size=128, lr=0.02, model_options={"width": WIDTH}
    )
    (ckpt,) = train_labeler(train, cfg, tmp_path / "labeler", test_set=test, device="cpu")
    labeler = load_labeler(ckpt)
    print(f"\nlabeler (5,000 images, 5 epochs): test accuracy {labeler.meta.test_accuracy:.1%}")
    assert labeler.meta.test_accuracy > 0.30

    distilled = random_real("cifar10", 10, seed=0)
    la = augment(distilled, labeler, 5, 0.625, device="cpu", codec=None)
    assert la.dense.shape == (100, 25, 10)
    torch.testing.assert_close(la.dense.sum(-1), torch.ones(100, 25))
    path = la.save(tmp_path / "cifar10_rr_ipc10_n5.safetensors")
    la = LabelAugmentedSet.load(path)
    overhead = set_storage_report(la).overhead
    print(f"storage overhead at 32 px, IPC 10, N 5: {overhead:.1%}")

    accs = {}
    for mode, epochs in (("baseline", 300), ("ladd", 30)):
        res = train_and_test(
            la,
            test,
            TrainConfig(mode=mode, epochs=epochs, seeds=(0,), model_options={"width": WIDTH}),
        )
        accs[mode] = res.accuracy_mean
        print(
            f"{mode}: {res.accuracy_mean:.1%} on the 10k test set after {epochs} epochs "
            f"({res.num_samples} samples/epoch, {res.seconds:.0f} s, {res.flops / 1e12:.2f} TFLOPs)"
        )
        assert res.loss_curves[0][-1] < res.loss_curves[0][0]
    print(f"total {time.perf_counter() - t0:.0f} s")
    assert accs["baseline"] > 0.20  # chance 10 %; measured 27.8 %
    assert accs["ladd"] > 0.25  # measured 35.9 %: dense labels help already
