"""Image headers, bounded decoding and the folder walk of ladd.data.decode (caps: ladd.limits)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from ladd.data import decode
from ladd.data.decode import (
    ImageDecodeError,
    decode_images,
    image_size,
    list_image_files,
    read_image_tree,
    resize_center_crop,
    zip_entry_count,
)
from ladd.limits import InputLimitError


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def noise(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    g = torch.Generator().manual_seed(seed)
    channels = {"RGB": 3, "L": 1, "RGBA": 4, "CMYK": 4}[mode]
    pixels = torch.randint(0, 256, (height, width, channels), generator=g, dtype=torch.uint8)
    return Image.frombytes(mode, (width, height), pixels.numpy().tobytes())


@pytest.mark.parametrize(
    ("fmt", "mode", "options"),
    [
        ("PNG", "RGB", {}),
        ("PNG", "L", {}),
        ("PNG", "RGBA", {}),
        ("JPEG", "RGB", {}),
        ("JPEG", "L", {"progressive": True}),
        ("JPEG", "CMYK", {}),
        ("JPEG", "RGB", {"exif": b"Exif\x00\x00" + bytes(5000), "icc_profile": bytes(70000)}),
        ("GIF", "L", {}),
        ("BMP", "RGB", {}),
        ("WEBP", "RGB", {}),
        ("TIFF", "RGB", {}),
    ],
)
def test_header_size_is_the_size_pil_decodes(fmt, mode, options) -> None:
    """The header parser (PNG, JPEG, then PIL's Image.open) agrees with a full PIL decode,
    JPEGs with large APP segments (EXIF, a 70 KB ICC profile) included."""
    data = encode(noise(37, 23, mode), fmt, **options)
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        assert image_size(data, "x") == img.size == (37, 23)


def test_garbage_and_zero_sized_headers_are_decode_errors() -> None:
    with pytest.raises(ImageDecodeError, match="cannot decode"):
        image_size(b"not an image at all", "junk.png")
    png = bytearray(encode(noise(4, 4), "PNG"))
    png[16:20] = bytes(4)  # width 0 (the chunk's CRC is not checked at header level)
    with pytest.raises(ImageDecodeError, match="0 x 4"):
        image_size(bytes(png), "zero.png")


def test_pixels_are_checked_before_decoding(monkeypatch) -> None:
    """The check uses the header only: a PNG whose header claims 60000 x 60000 is refused
    even though its pixel data is missing (decoding it would fail, or take 10 GB)."""
    png = bytearray(encode(noise(4, 4), "PNG"))
    png[16:24] = (60000).to_bytes(4, "big") * 2
    with pytest.raises(InputLimitError, match="60000 x 60000.*LADD_MAX_IMAGE_PIXELS"):
        decode_images([bytes(png)], 32)
    with pytest.raises(InputLimitError, match="LADD_MAX_IMAGE_PIXELS"):
        decode_images([bytes(png)], 32, large=True)


def test_bounded_resizing_gives_the_same_pixels_as_one_batch(monkeypatch) -> None:
    """Images wait for resizing in a bounded buffer; flushing it after every image gives the
    same tensor as resizing each image on its own."""
    shapes = [(40, 30), (32, 32), (40, 30), (50, 64), (40, 30), (64, 50)]
    images = [noise(w, h, seed=i) for i, (w, h) in enumerate(shapes)]
    data = [encode(img, "PNG") for img in images]
    expected = torch.cat(
        [
            resize_center_crop(
                torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
                .reshape(img.size[1], img.size[0], 3)
                .permute(2, 0, 1)
                .unsqueeze(0),
                32,
            )
            for img in images
        ]
    )
    assert torch.equal(decode_images(data, 32), expected)
    monkeypatch.setattr(decode, "RESIZE_BUFFER_BYTES", 1)  # flush after every image
    assert torch.equal(decode_images(data, 32), expected)


def test_size_none_takes_the_first_images_short_side() -> None:
    data = [encode(noise(40, 30), "PNG"), encode(noise(64, 64, seed=1), "PNG")]
    assert decode_images(data).shape == (2, 3, 30, 30)


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [noise(16, 16, "L", seed=i).convert("P") for i in range(5)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    out = decode_images([buf.getvalue()], 16)
    first = frames[0].convert("RGB")
    assert out.shape == (1, 3, 16, 16)
    assert torch.equal(out[0].permute(1, 2, 0).flatten(), torch.tensor(list(first.tobytes())))


def test_a_file_larger_than_any_decode_is_not_read(tmp_path, monkeypatch) -> None:
    big = tmp_path / "huge.png"
    big.write_bytes(encode(noise(64, 64), "PNG") + bytes(2_000_000))
    monkeypatch.setenv("LADD_MAX_DECODED_BYTES", "1M")
    with pytest.raises(InputLimitError, match="LADD_MAX_DECODED_BYTES"):
        decode_images([big], 8)


# ---------------------------------------------------------------------------------------------
# The folder walk


def save(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise(6, 6, seed=seed).save(path)


def test_walk_skips_hidden_and_non_images_and_sorts(tmp_path) -> None:
    save(tmp_path / "b" / "2.png")
    save(tmp_path / "a" / "1.png")
    save(tmp_path / "a" / ".hidden.png")
    save(tmp_path / ".git" / "x.png")
    save(tmp_path / "__MACOSX" / "a" / "1.png")
    (tmp_path / "a" / "notes.txt").write_text("x")
    assert list(list_image_files(tmp_path).files) == ["a/1.png", "b/2.png"]


def test_a_linked_file_already_listed_is_skipped_and_reported(tmp_path) -> None:
    save(tmp_path / "a" / "1.png")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "same.png").symlink_to(tmp_path / "a" / "1.png")
    (tmp_path / "b" / "broken.png").symlink_to(tmp_path / "nowhere.png")
    with pytest.warns(UserWarning, match="did not follow 2 symlink"):
        listing = list_image_files(tmp_path)
    assert list(listing.files) == ["a/1.png"]
    assert sorted(listing.skipped) == ["b/broken.png", "b/same.png"]


def test_images_cap_stops_the_walk(tmp_path, monkeypatch) -> None:
    for i in range(6):
        save(tmp_path / "a" / f"{i}.png", seed=i)
    monkeypatch.setenv("LADD_MAX_IMAGES", "5")
    with pytest.raises(InputLimitError, match="more than 5 images.*LADD_MAX_IMAGES"):
        read_image_tree(tmp_path)


def test_zip_entry_count_reads_the_end_record(tmp_path) -> None:
    target = tmp_path / "a.zip"
    with zipfile.ZipFile(target, "w") as zf:
        for i in range(7):
            zf.writestr(f"c/{i}.png", b"x" * i)
        zf.comment = b"a comment after the directory"
    assert zip_entry_count(target) == 7
    (tmp_path / "junk.zip").write_bytes(b"PK junk")
    assert zip_entry_count(tmp_path / "junk.zip") is None


def _gradient(width: int, height: int) -> torch.Tensor:
    """uint8 (1, 3, H, W): smooth ramps (a resize of it barely depends on sub-pixel shifts)."""
    y = torch.linspace(0, 1, height).view(height, 1)
    x = torch.linspace(0, 1, width).view(1, width)
    planes = [80 + 100 * y + 0 * x, 60 + 120 * x + 0 * y, 200 - 100 * (x + y) / 2]
    return torch.stack(planes).round().to(torch.uint8).unsqueeze(0)


@pytest.mark.parametrize(("width", "height"), [(24, 3000), (3000, 24)])
def test_an_elongated_image_is_resized_from_its_centre(monkeypatch, width, height) -> None:
    """Issue #38: the resize of a 1 x 1,000,000 PNG grew with its aspect ratio (12 GB at
    32 px). An image whose resized copy would pass MAX_RESIZED_IMAGE_BYTES is cut to its
    centre first; the crop is the same to within a level or two of the whole resize."""
    images = _gradient(width, height)
    whole = resize_center_crop(images, 16)
    monkeypatch.setattr(decode, "MAX_RESIZED_IMAGE_BYTES", 4096)  # the same image, now "too big"
    centre = resize_center_crop(images, 16)
    assert centre.shape == whole.shape == (1, 3, 16, 16)
    assert (centre.int() - whole.int()).abs().max() <= 2
    pil = Image.frombytes("RGB", (width, height), images[0].permute(1, 2, 0).numpy().tobytes())
    cut = decode.centre_of_elongated(pil, 16)
    assert max(cut.size) < max(width, height) and min(cut.size) == min(width, height)
