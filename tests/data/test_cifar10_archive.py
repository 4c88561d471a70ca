"""CIFAR-10 from the shared JPEG archive (../shared/data/cifar10-jpg.tar.xz), when present.

The first run decodes 60,000 JPEGs (tens of seconds) into <repo>/.ladd-cache/; later runs
read the cache.
"""

import os
import time
from pathlib import Path

import pytest
import torch

from ladd.data import load_source
from ladd.data.cifar import CIFAR10_ARCHIVE, CIFAR10_CLASSES

REPO = Path(__file__).resolve().parents[2]


def shared_data() -> Path | None:
    folder = os.environ.get("LADD_SHARED_DATA")
    if folder and (Path(folder) / CIFAR10_ARCHIVE).is_file():
        return Path(folder)
    return None


@pytest.fixture
def archive_env(monkeypatch):
    folder = shared_data()
    if folder is None:
        pytest.skip(f"LADD_SHARED_DATA is not set to a folder holding {CIFAR10_ARCHIVE}")
    monkeypatch.setenv("LADD_SHARED_DATA", str(folder.resolve()))
    monkeypatch.setenv("LADD_CACHE_DIR", str(REPO / ".ladd-cache"))
    return folder


def test_cifar10_archive_has_the_standard_splits(archive_env):
    started = time.perf_counter()
    train = load_source("cifar10", "train")
    test = load_source("cifar10", "test")
    first = time.perf_counter() - started
    assert train.images.shape == (50_000, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (10_000, 3, 32, 32) and test.images.dtype == torch.uint8
    assert train.class_counts() == [5_000] * 10
    assert test.class_counts() == [1_000] * 10
    assert train.info.class_names == CIFAR10_CLASSES
    assert train.info.mean == (0.4914, 0.4822, 0.4465)
    # real photographs: pixel statistics near the published CIFAR-10 means
    measured = train.images[::10].float().mean(dim=(0, 2, 3)) / 255  # every class
    assert torch.allclose(measured, torch.tensor(train.info.mean), atol=0.02)

    started = time.perf_counter()
    again = load_source("cifar10", "train")
    cached = time.perf_counter() - started
    assert torch.equal(again.labels, train.labels)
    print(f"\ncifar10 train+test first load {first:.2f}s, cached train load {cached:.3f}s")
