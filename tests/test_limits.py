"""The input caps of ladd.limits, each tried with the hostile or careless input of issue #14.

Bombs run in a child process whose address space is capped (RLIMIT_AS) at what its imports
mapped plus HEADROOM (tests/capped.py: torch alone maps ~3.5 GB of virtual memory, so a fixed
cap would be either too tight to import or too loose to catch anything). A regression that
decodes or inflates a bomb then fails with a MemoryError in the child instead of taking the
machine down, and a walk that loops fails on the child's timeout. Each finishes in seconds.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import pytest
import torch
from capped import run_capped
from PIL import Image
from torch import nn

from ladd.limits import ENV_VARS, GIB, MIB, InputLimitError, Limits, current_limits

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the app package (uploads) lives at the repository root
    sys.path.insert(0, str(ROOT))

# ---------------------------------------------------------------------------------------------
# Building the hostile inputs (small files, built here: nothing is downloaded or committed)


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def write_png_bomb(path: Path, side: int = 16000) -> Path:
    """A valid 8-bit greyscale PNG of side x side black pixels: ~250 KB at 16000 px that
    decodes to 256 MB (768 MB as RGB), built row by row without holding the pixels."""
    co = zlib.compressobj(9)
    row = bytes(1 + side)  # filter byte 0, then `side` black pixels
    idat = b"".join(co.compress(row) for _ in range(side)) + co.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )
    return path


def write_zip_bomb(path: Path, entries: int = 24, entry_bytes: int = 64 * MIB) -> Path:
    """A valid ~1.5 MB zip whose `entries` members (class-folder .png names) each inflate to
    `entry_bytes` zeros: 1.5 GiB in all. One deflate stream is computed and stored `entries`
    times, so building it takes about a second."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = co.compress(bytes(entry_bytes)) + co.flush()
    crc = zlib.crc32(bytes(entry_bytes))
    date = (1 << 5) | 1  # 1980-01-01
    local, central = bytearray(), bytearray()
    for i in range(entries):
        name = f"bomb/class{i % 2}/{i:03d}.png".encode()
        sizes = (crc, len(stream), entry_bytes, len(name), 0)  # crc, packed, unpacked, name, extra
        central += struct.pack("<IHHHHHH", 0x02014B50, 20, 20, 0, 8, 0, date)
        central += struct.pack("<IIIHH", *sizes) + struct.pack("<HHHII", 0, 0, 0, 0, len(local))
        central += name
        local += struct.pack("<IHHHHH", 0x04034B50, 20, 0, 8, 0, date)
        local += struct.pack("<IIIHH", *sizes) + name + stream
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, entries, entries, len(central), len(local), 0)
    path.write_bytes(bytes(local) + bytes(central) + end)
    return path


def write_images(folder: Path, count: int, size: int = 8, colour: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", (size, size), (colour, 40 * (i % 6), 90)).save(folder / f"{i:03d}.png")


@pytest.fixture(scope="module")
def png_bomb_folder(tmp_path_factory) -> Path:
    """Class folders `big/` (the bomb) and `small/` (an ordinary image)."""
    root = tmp_path_factory.mktemp("png_bomb") / "set"
    write_png_bomb(root / "big" / "bomb.png")
    write_images(root / "small", 1)
    return root


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory) -> Path:
    return write_zip_bomb(tmp_path_factory.mktemp("zip_bomb") / "bomb.zip")


def test_the_bombs_are_what_the_issue_describes(png_bomb_folder, zip_bomb) -> None:
    """The built files are real, valid bombs: a ~250 KB PNG of 16000 x 16000, a ~1.5 MB zip
    of GiBs (header-level checks only: inflating them here would be the bug itself)."""
    import zipfile

    png = (png_bomb_folder / "big" / "bomb.png").read_bytes()
    assert len(png) < 400_000
    assert png[12:16] == b"IHDR" and struct.unpack(">II", png[16:24]) == (16000, 16000)
    idat = png[png.index(b"IDAT") + 4 :]
    assert zlib.decompressobj().decompress(idat, 2 * 16001) == bytes(2 * 16001)  # 2 black rows
    assert zip_bomb.stat().st_size < 2 * MIB
    with zipfile.ZipFile(zip_bomb) as zf:
        infos = zf.infolist()
        assert sum(i.file_size for i in infos) >= 1.5 * GIB
        with zf.open(infos[0]) as member:  # the deflate stream really inflates (first 1 MiB)
            assert member.read(MIB) == bytes(MIB)


# ---------------------------------------------------------------------------------------------
# The bombs of issue #14, all run in ONE capped child process (its imports cost seconds)

SCENARIOS = """
@scenario("png_bomb_cli")
def _():
    sys.argv = ["ladd", "info", str(PNG_BOMB_FOLDER), "--source", "shapes"]
    ladd.cli.main()

@scenario("png_bomb_source")
def _():
    return ladd.data.load_source(f"imagefolder:{PNG_BOMB_FOLDER}", cache_dir=CACHE)

@scenario("zip_bomb_load_set")
def _():
    return ladd.sets.load_set(ZIP_BOMB)

@scenario("zip_bomb_source")
def _():
    return ladd.data.load_source(f"imagefolder:{ZIP_BOMB}", cache_dir=CACHE)

@scenario("zip_bomb_bytes", {"LADD_MAX_ARCHIVE_RATIO": "100000", "LADD_MAX_ARCHIVE_BYTES": "200M"})
def _():
    return ladd.data.decode.read_image_tree(ZIP_BOMB)

@scenario("dotdot_loop")
def _():
    return len(ladd.data.decode.read_image_tree(LOOP_FOLDER).files)

@scenario("link_into_tree")
def _():
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = ladd.sets.load_set(LINK_FOLDER)
    warned = any("symlink" in str(w.message) for w in caught)
    return len(ds.labels), sorted(ds.labels.tolist()), warned

@scenario("huge_n")
def _():
    from ladd.dense import augment
    from ladd.labeler import Labeler, LabelerMeta
    from ladd.models import create_model
    from ladd.sets import random_real
    ds = random_real("shapes", 1, seed=0, limit_per_class=1)
    model = create_model("convnet_d3", 10, 32, width=4)
    meta = LabelerMeta(arch="convnet_d3", spec=model.spec.to_dict(), source="shapes", epoch=1,
        mean=tuple(ds.mean), std=tuple(ds.std), class_names=tuple(ds.class_names), seed=0,
        test_accuracy=0.0, image_size=32)
    return augment(ds, Labeler(model, meta), n=1000, r=0.625, device="cpu", codec=None)

@scenario("large_grid", {"LADD_MAX_N": "150"})
def _():
    torch.manual_seed(0)
    model = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(48, 10))
    dense = ladd.dense.generate_dense_labels(torch.rand(1, 3, 64, 64), model, 150, 0.625)
    return tuple(dense.shape), round(float(dense.sum()))

"""


@pytest.fixture(scope="module")
def capped(tmp_path_factory, png_bomb_folder, zip_bomb) -> dict:
    """Every bomb below, each a scenario of one child process whose address space is capped
    at what its imports mapped plus HEADROOM (and 30 s of time per scenario)."""
    base = tmp_path_factory.mktemp("capped")
    loop = base / "loop"  # two `..` links (issue #14: still running after 90 s at 1.6 GB)
    write_images(loop / "a", 3)
    write_images(loop / "b", 2, colour=200)
    (loop / "a" / "up").symlink_to("..")
    (loop / "b" / "up").symlink_to("..")
    linked = base / "linked"  # links back into the tree (issue #14: 81 copies of one image)
    write_images(linked / "cat", 2)
    write_images(linked / "dog", 2, colour=200)
    (linked / "cat" / "again").symlink_to(linked)
    (linked / "dog" / "cat_copy").symlink_to(linked / "cat")
    paths = {
        "PNG_BOMB_FOLDER": png_bomb_folder,
        "ZIP_BOMB": zip_bomb,
        "CACHE": base / "cache",
        "LOOP_FOLDER": loop,
        "LINK_FOLDER": linked,
    }
    return run_capped(SCENARIOS, paths)


def test_the_cap_catches_a_real_allocation(capped) -> None:
    """The harness itself: under the cap a 2 GiB allocation fails in the child, 100 MB works."""
    assert "error" in capped["allocate_2g"], capped["allocate_2g"]
    assert capped["allocate_100m"] == {"done": "104857600", "stderr": ""}


def test_png_bomb_in_a_class_folder_is_one_line_from_ladd_info(capped) -> None:
    """`ladd info <folder> --source shapes` (issue #14: 8 GB resident in 20 s) refuses the
    16000 x 16000 PNG from its header: exit 1, one line naming the cap's variable."""
    got = capped["png_bomb_cli"]
    assert got.get("error") == "SystemExit" and got["message"] == "1", got
    lines = [line for line in got["stderr"].splitlines() if line.strip()]
    assert len(lines) == 1, got
    assert "error:" in lines[0] and "16000 x 16000" in lines[0]
    assert "LADD_MAX_IMAGE_PIXELS" in lines[0]


def test_png_bomb_as_an_imagefolder_source_is_refused(capped) -> None:
    """`--source imagefolder:<folder>`: the source's first image sets the output size, so the
    bomb asked for 16000-px outputs; its header is now checked first."""
    got = capped["png_bomb_source"]
    assert got.get("error") == "InputLimitError", got
    assert "LADD_MAX_IMAGE_PIXELS" in got["message"]


@pytest.mark.parametrize("how", ["zip_bomb_load_set", "zip_bomb_source"])
def test_zip_bomb_is_refused_by_its_ratio(capped, how) -> None:
    """`ladd info <zip>` (load_set) and `random-real --source imagefolder:<zip>` (issue #14:
    2 GB in 7 s) refuse the 1.5 MB zip of 1.5 GiB by its ratio, naming the variable, once
    the declared sizes pass 100 x its size (at most ~160 MB read)."""
    got = capped[how]
    assert "LADD_MAX_ARCHIVE_RATIO" in got.get("message", ""), got


def test_zip_bomb_is_refused_by_its_bytes_when_the_ratio_is_raised(capped) -> None:
    """With the ratio cap lifted, the expanded-bytes cap still stops the read."""
    got = capped["zip_bomb_bytes"]
    assert got.get("error") == "InputLimitError", got
    assert "LADD_MAX_ARCHIVE_BYTES" in got["message"]


def test_a_folder_with_two_dotdot_symlinks_does_not_loop(capped) -> None:
    """Issue #14: two `..` links made the walk run for 90 s+ at 1.6 GB. Each of the 5 images
    is now listed once and the walk ends at once (30 s in the child fails a regression)."""
    got = capped["dotdot_loop"]
    assert got.get("done") == "5" and "did not follow 2 symlink(s)" in got["stderr"], got


def test_a_link_back_into_the_tree_loads_no_duplicates(capped) -> None:
    """Issue #14: one link loaded 81 copies of one image. A link to the root and a class
    folder linked into another add nothing: 4 images stay 4, with a warning."""
    assert capped["link_into_tree"]["done"] == "(4, [0, 0, 1, 1], True)", capped["link_into_tree"]


def test_huge_n_is_refused_before_anything_is_allocated(capped) -> None:
    """`ladd augment ... --n 1000` (issue #14: 22 GB, killed by the kernel) is one clear error."""
    got = capped["huge_n"]
    assert got.get("error") == "InputLimitError", got
    assert "LADD_MAX_N" in got["message"] and "1,000,000 crops" in got["message"]


def test_a_large_grid_is_labelled_in_slices_within_memory(capped) -> None:
    """With the N cap raised to 150 (22,500 crops of one 64-px image: ~1.5 GB of float crops
    at once before), the labels come out under the 1 GiB headroom, a slice at a time."""
    assert capped["large_grid"]["done"] == "((1, 22500, 10), 22500)", capped["large_grid"]


def test_a_raised_pixel_cap_lets_a_large_image_through(tmp_path, monkeypatch) -> None:
    """The cap is a setting, not a ban: the same folder loads once the variable raises it."""
    folder = tmp_path / "set"
    write_images(folder / "a", 1, size=300)
    write_images(folder / "b", 1, size=300)
    from ladd.data.decode import decode_images, read_image_tree

    tree = read_image_tree(folder)
    monkeypatch.setenv("LADD_MAX_IMAGE_PIXELS", "50000")
    with pytest.raises(InputLimitError, match="LADD_MAX_IMAGE_PIXELS"):
        decode_images(list(tree.files.values()), 32)
    monkeypatch.setenv("LADD_MAX_IMAGE_PIXELS", "90000")
    assert decode_images(list(tree.files.values()), 32).shape == (2, 3, 32, 32)


# ---------------------------------------------------------------------------------------------
# 1b. zip bomb: entries, ratio and expanded bytes, counted while reading


def test_zip_bomb_upload_is_refused_and_leaves_nothing(zip_bomb, tmp_path) -> None:
    """Issue #14: as a dashboard upload the zip bomb wrote 1.5 GiB to disk in 1.7 s. Now the
    extraction is refused (ratio) and neither the upload folder nor a staging folder stays."""
    import io

    from app.uploads import UploadError, save_upload

    upload = io.BytesIO(zip_bomb.read_bytes())
    upload.name = "bomb.zip"
    ws = tmp_path / "ws"
    with pytest.raises(UploadError, match="LADD_MAX_ARCHIVE_RATIO"):
        save_upload([upload], ws / "uploads")
    assert list((ws / "uploads").iterdir()) == []
    assert [p.name for p in ws.iterdir()] == ["uploads"]


def test_tar_member_over_the_byte_cap_is_refused_from_its_header(tmp_path, monkeypatch) -> None:
    """A .tar.gz member is checked by its declared size before it is read (tar data cannot
    lie about its length), so an 8 MB member under a 1 MB cap is refused at once."""
    import tarfile

    from ladd.data.decode import read_image_tree

    class Zeros:
        def __init__(self, n: int) -> None:
            self.left = n

        def read(self, n: int = -1) -> bytes:
            n = self.left if n < 0 else min(n, self.left)
            self.left -= n
            return bytes(n)

    target = tmp_path / "big.tar.gz"
    with tarfile.open(target, "w:gz") as tf:
        info = tarfile.TarInfo("cls/0.png")
        info.size = 8 * MIB
        tf.addfile(info, Zeros(info.size))
    monkeypatch.setenv("LADD_MAX_ARCHIVE_BYTES", "1M")
    with pytest.raises(InputLimitError, match="LADD_MAX_ARCHIVE_BYTES"):
        read_image_tree(target)


def test_archive_entry_cap_is_checked_before_the_directory_is_parsed(tmp_path, monkeypatch):
    import zipfile

    from ladd.data.decode import read_image_tree, zip_entry_count

    target = tmp_path / "many.zip"
    with zipfile.ZipFile(target, "w") as zf:
        for i in range(12):
            zf.writestr(f"c{i % 2}/{i}.png", b"x")
    assert zip_entry_count(target) == 12
    monkeypatch.setenv("LADD_MAX_ARCHIVE_ENTRIES", "10")
    with pytest.raises(InputLimitError, match="LADD_MAX_ARCHIVE_ENTRIES"):
        read_image_tree(target)


# ---------------------------------------------------------------------------------------------
# 1c. images per set and total decoded bytes


def test_images_per_set_cap(tmp_path, monkeypatch) -> None:
    from ladd.data import load_source

    write_images(tmp_path / "set" / "a", 4)
    write_images(tmp_path / "set" / "b", 4)
    monkeypatch.setenv("LADD_MAX_IMAGES", "7")
    with pytest.raises(InputLimitError, match="LADD_MAX_IMAGES"):
        load_source(f"imagefolder:{tmp_path / 'set'}", cache_dir=tmp_path / "cache")
    monkeypatch.setenv("LADD_MAX_IMAGES", "8")
    assert len(load_source(f"imagefolder:{tmp_path / 'set'}", cache_dir=tmp_path / "cache")) == 8


def test_decoded_bytes_are_checked_before_the_output_is_allocated(tmp_path, monkeypatch) -> None:
    """The first image sets an image folder's size (issue #14); 20 images of 500 px need
    15 MB decoded, refused under a 10 MB cap with the variable named."""
    from ladd.data import load_source

    write_images(tmp_path / "set" / "a", 10, size=500)
    write_images(tmp_path / "set" / "b", 10, size=500)
    monkeypatch.setenv("LADD_MAX_DECODED_BYTES", "10M")
    with pytest.raises(InputLimitError, match="LADD_MAX_DECODED_BYTES"):
        load_source(f"imagefolder:{tmp_path / 'set'}", cache_dir=tmp_path / "cache")
    monkeypatch.setenv("LADD_MAX_DECODED_BYTES", "16M")
    got = load_source(f"imagefolder:{tmp_path / 'set'}", cache_dir=tmp_path / "cache")
    assert got.images.shape == (20, 3, 500, 500)


# ---------------------------------------------------------------------------------------------
# 1d. symlink loops and links back into the tree


def test_links_to_new_folders_are_still_followed(tmp_path) -> None:
    """Following links stays the CLI's behaviour: a class folder linked from elsewhere loads."""
    from ladd.data.decode import read_image_tree

    write_images(tmp_path / "elsewhere" / "dog", 2)
    root = tmp_path / "set"
    write_images(root / "cat", 2)
    (root / "dog").symlink_to(tmp_path / "elsewhere" / "dog")
    assert sorted(read_image_tree(root).files) == [
        "cat/000.png",
        "cat/001.png",
        "dog/000.png",
        "dog/001.png",
    ]


def test_imagefolder_fingerprint_walks_the_same_files_without_looping(tmp_path) -> None:
    from ladd.data.imagefolder import ImageFolderSource

    root = tmp_path / "set"
    write_images(root / "a", 2)
    (root / "a" / "loop").symlink_to("..")
    source = ImageFolderSource(root)
    first = source.fingerprint(None)
    write_images(root / "a", 3)  # one more image changes it
    assert source.fingerprint(None) != first


# ---------------------------------------------------------------------------------------------
# 1e. N and the crop memory it implies


def tiny_labeler(size: int, classes: int = 10) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * size * size, classes))


def test_slices_give_the_same_labels_as_one_pass() -> None:
    """The sliced path (grid larger than a batch) equals the all-crops path."""
    from ladd.dense import generate_dense_labels
    from ladd.subsample import sub_sample, sub_sample_range

    x = torch.rand(3, 3, 24, 24)
    model = tiny_labeler(24)
    whole = generate_dense_labels(x, model, 7, 0.6, batch_size=1024)  # all 49 crops per pass
    sliced = generate_dense_labels(x, model, 7, 0.6, batch_size=10)  # 10 crops per pass
    assert torch.allclose(whole, sliced, atol=1e-6)
    assert torch.allclose(sub_sample(x, 7, 0.6)[:, 13:29], sub_sample_range(x, 7, 0.6, 13, 29))


def test_crop_memory_is_checked_before_allocating(monkeypatch) -> None:
    from ladd.dense import generate_dense_labels

    x = torch.rand(50, 3, 32, 32)
    model = tiny_labeler(32)
    monkeypatch.setenv("LADD_MAX_CROP_BYTES", "2M")
    with pytest.raises(InputLimitError, match="LADD_MAX_CROP_BYTES"):
        generate_dense_labels(x, model, 9, 0.625)
    monkeypatch.setenv("LADD_MAX_CROP_BYTES", "64M")
    assert generate_dense_labels(x, model, 9, 0.625).shape == (50, 81, 10)


# ---------------------------------------------------------------------------------------------
# The settings themselves


def test_every_cap_has_a_documented_variable_and_reads_it(monkeypatch) -> None:
    import ladd.limits as limits_module

    for field, var in ENV_VARS.items():
        assert var in limits_module.__doc__, var
        monkeypatch.setenv(var, "3")
        assert getattr(current_limits(), field) == 3
        monkeypatch.delenv(var)
    monkeypatch.setenv("LADD_MAX_DECODED_BYTES", "2G")
    monkeypatch.setenv("LADD_MAX_IMAGES", "1_500")
    assert current_limits().max_decoded_bytes == 2 * GIB
    assert current_limits().max_images == 1500


@pytest.mark.parametrize(
    ("var", "value"), [("LADD_MAX_IMAGES", "2G"), ("LADD_MAX_N", "many"), ("LADD_MAX_N", "0")]
)
def test_a_bad_setting_is_one_clear_line(monkeypatch, var, value) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError, match=var) as caught:
        current_limits()
    assert "\n" not in str(caught.value)


def test_every_refusal_names_its_variable_in_one_line() -> None:
    lim = Limits(
        max_image_pixels=10,
        max_images=1,
        max_decoded_bytes=1,
        max_n=2,
        max_crop_bytes=1,
        max_archive_entries=1,
        max_archive_bytes=1,
    )
    budget = lim.archive_budget("a.zip", 1)
    checks = {
        "LADD_MAX_IMAGE_PIXELS": lambda: lim.check_pixels(4, 4, "x.png"),
        "LADD_MAX_IMAGES": lambda: lim.check_images(2, "folder"),
        "LADD_MAX_DECODED_BYTES": lambda: lim.check_decoded(2, "images"),
        "LADD_MAX_N": lambda: lim.check_n(3),
        "LADD_MAX_CROP_BYTES": lambda: lim.check_crop_bytes(2, "labelling"),
        "LADD_MAX_ARCHIVE_ENTRIES": lambda: budget.check_entry_count(2),
        "LADD_MAX_ARCHIVE_BYTES": lambda: budget.add_bytes(2),
    }
    for var, check in checks.items():
        with pytest.raises(InputLimitError, match=var) as caught:
            check()
        assert "\n" not in str(caught.value) and isinstance(caught.value, ValueError)


def test_defaults_admit_the_real_datasets() -> None:
    """CIFAR-10 (60,000 images of 32 px, its 18 MB archive of 60,000 JPEGs ~3:1) and an
    ImageNet subset at 128 px (~13,000 train images of photographs up to ~4000 x 3000), with
    the paper's largest grid (N = 9) on CIFAR-100 at IPC 50, pass every default cap."""
    lim = Limits()
    lim.check_images(60_000, "cifar10")
    lim.check_decoded(60_000 * 3 * 32 * 32, "cifar10")
    lim.check_images(13_000, "imagenette")
    lim.check_decoded(13_000 * 3 * 128 * 128, "imagenette")
    lim.check_pixels(4000, 3000, "photo.jpg")
    budget = lim.archive_budget("cifar10-jpg.tar.xz", 18_572_016)
    budget.check_entry_count(60_000 + 30)
    budget.add_bytes(60_000 * 900)  # ~900 bytes a JPEG
    lim.check_n(9)
    lim.check_crop_bytes(5000 * 81 * 100 * 4 + 4 * 2 * 256 * 3 * 32 * 32, "cifar100 ipc 50")


def test_the_caps_of_issue_38_refuse_in_one_line_naming_their_variable() -> None:
    """Classes, seeds and model bytes: each checked before anything is sized by it."""
    lim = Limits(max_classes=10, max_seeds=3, max_model_bytes=1000)
    checks = {
        "LADD_MAX_CLASSES": lambda: lim.check_classes(11, "labels.pt"),
        "LADD_MAX_SEEDS": lambda: lim.check_seeds(4),
        "LADD_MAX_MODEL_BYTES": lambda: lim.check_model_bytes(1001, "convnet"),
    }
    for var, check in checks.items():
        with pytest.raises(InputLimitError, match=var) as caught:
            check()
        assert "\n" not in str(caught.value)
    lim.check_classes(10, "x")
    lim.check_seeds(3)
    lim.check_model_bytes(1000, "x")
    real = Limits()  # ImageNet-21k's classes, the study's seeds, ViT-L / ResNet-152 in fp32
    real.check_classes(21_841, "imagenet21k")
    real.check_seeds(100)
    real.check_model_bytes(1_300_000_000, "vit_large")


def test_a_hundred_million_seeds_are_refused_before_the_list_is_built(monkeypatch) -> None:
    """Issue #38: `--seeds 100000000` ran for a minute and 5 GB before failing. The check
    the configuration calls refuses the count itself, at once."""
    from ladd.limits import check_seeds

    with pytest.raises(InputLimitError, match="100,000,000 seeds .* LADD_MAX_SEEDS"):
        check_seeds(100_000_000)
    check_seeds(5)
    monkeypatch.setenv("LADD_MAX_SEEDS", "2")
    with pytest.raises(InputLimitError):
        check_seeds(5)


def test_a_model_over_the_byte_cap_is_refused_from_a_meta_build(monkeypatch) -> None:
    """A width or class count that sizes a model is checked on the meta device first."""
    from ladd.models import create_model

    monkeypatch.setenv("LADD_MAX_MODEL_BYTES", "1M")
    with pytest.raises(InputLimitError, match="LADD_MAX_MODEL_BYTES"):
        create_model("convnet_d3", 10, 32, width=256)
    assert create_model("convnet_d3", 10, 32, width=8) is not None


def test_an_image_size_that_sizes_a_source_is_checked_before_allocating(monkeypatch) -> None:
    """`--image-size 100000` on a generated source asked for 150 TB of pixels (and a stored
    source resized to a large size allocates the same way): refused naming the cap."""
    from dataclasses import replace

    from ladd.data import load_source
    from ladd.data.base import resize_set

    with pytest.raises(InputLimitError, match="shapes at 100000 px.*LADD_MAX_DECODED_BYTES"):
        load_source("shapes", "train", image_size=100_000)
    small = load_source("shapes", "test", limit_per_class=1)
    monkeypatch.setenv("LADD_MAX_DECODED_BYTES", "1M")
    with pytest.raises(InputLimitError, match="at 512 px"):
        resize_set(small, replace(small.info, image_size=512))
