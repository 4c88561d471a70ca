"""ladd.torchfiles: torch files read with weights_only=True and no more memory than they hold."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from hostile_files import (
    write_pt_deflate_bomb,
    write_pt_legacy_claim,
    write_pt_view_claim,
    write_torch_zip,
)

from ladd.limits import InputLimitError
from ladd.torchfiles import TorchFileError, load_torch_file


def test_a_deflated_record_is_bounded_by_the_ratio_a_setting(tmp_path, monkeypatch) -> None:
    """A 128 KB `.pt` whose record inflates to 128 MiB is refused from its declared size;
    raising the ratio cap lets the same file load (the cap is a setting, not a ban)."""
    path = write_pt_deflate_bomb(tmp_path / "x.pt", 128 * 1024**2)
    with pytest.raises(InputLimitError, match="LADD_MAX_ARCHIVE_RATIO"):
        load_torch_file(path)
    monkeypatch.setenv("LADD_MAX_ARCHIVE_RATIO", "100000")
    assert load_torch_file(path).shape == (32 * 1024**2,)


def test_a_legacy_file_loads_unless_it_declares_more_than_it_holds(tmp_path) -> None:
    """Pre-1.6 torch files (DC's result files may be) still load; one whose storage declares
    8 GB in 400 bytes is refused by the scan of its pickles, before torch allocates it."""
    good = tmp_path / "good.pt"
    data = {"x": torch.arange(6.0).view(2, 3), "acc": np.float64(0.5)}
    torch.save(data, good, _use_new_zipfile_serialization=False)
    got = load_torch_file(good)
    assert torch.equal(got["x"], data["x"]) and float(got["acc"]) == 0.5
    with pytest.raises(TorchFileError, match="declares 8.0 GiB of tensor data"):
        load_torch_file(write_pt_legacy_claim(tmp_path / "claim.pt"))


def test_views_may_repeat_data_only_within_the_ratio(tmp_path) -> None:
    """A small expanded view loads as it is; a (10^6, 10^6) stride-0 view of 4 bytes is
    refused without being materialised."""
    small = tmp_path / "small.pt"
    torch.save(torch.zeros(4).expand(1000, 4), small)
    assert load_torch_file(small).shape == (1000, 4)
    with pytest.raises(InputLimitError, match="claim 3.6 TiB|claim .* GiB"):
        load_torch_file(write_pt_view_claim(tmp_path / "view.pt"))


def test_a_stored_record_must_hold_what_it_declares(tmp_path) -> None:
    """A record stored uncompressed whose header declares more bytes than it stores is
    corrupt: said so from the directory, before torch reads it."""
    buf = io.BytesIO()
    torch.save(torch.zeros(2), buf)
    import zipfile

    with zipfile.ZipFile(buf) as z:
        pkl = next(z.read(n) for n in z.namelist() if n.endswith("data.pkl"))
    path = write_torch_zip(tmp_path / "lie.pt", pkl, (bytes(8), 0, 3 * 1024**3, 0))
    with pytest.raises(TorchFileError, match="stored uncompressed yet declares"):
        load_torch_file(path)
