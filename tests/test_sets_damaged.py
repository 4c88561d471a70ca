"""Damaged files said for what they are, naming the file (issue #38, class 7)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from ladd.sets import DistilledFileError, load_set


def _png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (40 * i % 256, 90, 30)).save(buf, "PNG")
    return buf.getvalue()


def test_a_truncated_image_zip_is_a_truncated_zip_not_a_pytorch_checkpoint(tmp_path) -> None:
    """Issue #38: a truncated image `.zip` was reported as a corrupt PyTorch checkpoint
    (a zip without its directory was taken for a torch file)."""
    whole = tmp_path / "whole.zip"
    with zipfile.ZipFile(whole, "w") as zf:
        for c in ("cat", "dog"):
            for i in range(3):
                zf.writestr(f"set/{c}/{i}.png", _png(i))
    cut = tmp_path / "cut.zip"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert load_set(whole).images.shape[0] == 6
    with pytest.raises(DistilledFileError) as err:
        load_set(cut)
    message = str(err.value)
    assert str(cut) in message and "zip archive" in message and "truncated" in message
    assert "torch" not in message.lower() and "\n" not in message


def test_a_truncated_torch_zip_is_still_read_as_a_torch_file(tmp_path) -> None:
    whole = tmp_path / "whole.pt"
    torch.save(torch.zeros(2, 3, 8, 8), whole)
    cut = tmp_path / "images.pt"
    cut.write_bytes(whole.read_bytes()[:-200])
    with pytest.raises(DistilledFileError, match="truncated or corrupt"):
        load_set(cut)


def test_float8_images_are_read_or_refused_naming_the_file(tmp_path) -> None:
    """Issue #38: float8 images gave a raw `"isfinite" not implemented` without the file's
    name. Finite float8 images are read (as float32); NaN among them is said in one line."""
    dtype = torch.float8_e4m3fn
    images = (torch.rand(4, 3, 8, 8) - 0.5).to(dtype)
    path = tmp_path / "set.pt"
    torch.save({"images": images, "labels": torch.tensor([0, 0, 1, 1])}, path)
    ds = load_set(path, mean=(0.5,) * 3, std=(0.25,) * 3)
    assert ds.images.dtype == torch.float32
    assert torch.equal(ds.images, images.float())
    bad = images.clone()
    bad[0, 0, 0, 0] = float("nan")
    torch.save({"images": bad, "labels": torch.tensor([0, 0, 1, 1])}, path)
    with pytest.raises(DistilledFileError, match="NaN or Inf") as err:
        load_set(path, mean=(0.5,) * 3, std=(0.25,) * 3)
    assert str(path) in str(err.value)
    soft = torch.softmax(torch.rand(4, 2), 1).to(dtype)
    torch.save({"images": images.float(), "labels": soft}, path)
    assert load_set(path, mean=(0.5,) * 3, std=(0.25,) * 3).soft_labels.dtype == torch.float32


def test_a_float64_value_beyond_float32_is_said_so(tmp_path: Path) -> None:
    images = torch.zeros(2, 3, 8, 8, dtype=torch.float64)
    images[0, 0, 0, 0] = 1e300
    path = tmp_path / "wide.pt"
    torch.save({"images": images, "labels": torch.tensor([0, 1])}, path)
    with pytest.raises(DistilledFileError, match="beyond float32's range"):
        load_set(path, mean=(0.5,) * 3, std=(0.25,) * 3)
