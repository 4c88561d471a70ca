"""Dashboard uploads (app/uploads.py): streamed under caps, and a refused upload leaves no file.

Issue #14 items 1 and 7: an upload was read whole and written before it was checked, a zip
was unpacked with only a 2 GiB cap on its declared sizes, and a refusal after the upload
folder was made left files that then showed up as sets.
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the app package lives at the repository root
    sys.path.insert(0, str(ROOT))

from app.uploads import CHUNK, UploadError, save_upload  # noqa: E402
from ladd.sets import LabelAugmentedSet, load_set  # noqa: E402


class Upload(io.BytesIO):
    """Streamlit's UploadedFile is a BytesIO with a name; this one counts the bytes read."""

    def __init__(self, name: str, data: bytes) -> None:
        super().__init__(data)
        self.name = name
        self.bytes_read = 0

    def read(self, n: int | None = -1) -> bytes:
        chunk = super().read(n)
        self.bytes_read += len(chunk)
        return chunk


def la_bytes(tmp_path: Path, source: str | None = None) -> bytes:
    """A tiny valid label-augmented file (4 images of 8 px, 2 classes, N = 2)."""
    g = torch.Generator().manual_seed(0)
    la = LabelAugmentedSet(
        images=torch.rand(4, 3, 8, 8, generator=g),
        labels=torch.tensor([0, 1, 0, 1]),
        dense=torch.softmax(torch.rand(4, 4, 2, generator=g), -1),
        n=2,
        r=0.5,
        class_names=("a", "b"),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        source=source,
    )
    return la.save(tmp_path / "made.safetensors").read_bytes()


def png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (seed * 40 % 256, 90, 30)).save(buf, "PNG")
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def class_zip(count: int = 2) -> bytes:
    return zip_bytes({f"set/{c}/{i}.png": png(i) for c in ("cat", "dog") for i in range(count)})


def left_behind(ws: Path) -> list[str]:
    """Every path under the workspace except the empty uploads/ folder."""
    return sorted(str(p.relative_to(ws)) for p in ws.rglob("*") if p != ws / "uploads")


@pytest.fixture
def ws(tmp_path, monkeypatch) -> Path:
    for var in ("LADD_MAX_UPLOAD_BYTES", "LADD_MAX_ARCHIVE_ENTRIES", "LADD_MAX_ARCHIVE_RATIO"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "ws"
    root.mkdir()
    return root


# ---------------------------------------------------------------------------------------------
# Accepted uploads


def test_a_label_augmented_file_is_stored_and_returned(ws, tmp_path) -> None:
    saved = save_upload([Upload("mine.safetensors", la_bytes(tmp_path))], ws / "uploads")
    assert saved.parent.parent == ws / "uploads" and saved.name == "mine.safetensors"
    assert len(load_set(saved)) == 4
    assert [p.name for p in ws.iterdir()] == ["uploads"]  # no staging folder left


def test_a_zip_of_class_folders_is_unpacked_and_readable(ws) -> None:
    saved = save_upload([Upload("set.zip", class_zip())], ws / "uploads")
    assert saved.name == "set" and sorted(p.name for p in saved.iterdir()) == ["cat", "dog"]
    assert load_set(saved).labels.tolist() == [0, 0, 1, 1]
    assert not list(saved.parent.glob("*.zip"))


def test_the_same_upload_twice_reuses_its_folder(ws) -> None:
    first = save_upload([Upload("set.zip", class_zip())], ws / "uploads")
    again = save_upload([Upload("set.zip", class_zip())], ws / "uploads")
    assert first == again and len(list((ws / "uploads").iterdir())) == 1
    assert [p.name for p in ws.iterdir()] == ["uploads"]


# ---------------------------------------------------------------------------------------------
# Refused uploads leave nothing (issue #14 item 7)


def test_an_unsupported_file_beside_a_good_one_leaves_nothing(ws, tmp_path) -> None:
    """Before: the good file was written into uploads/<digest>/, then the refusal came, and
    the half upload was listed as a set."""
    files = [Upload("a.safetensors", la_bytes(tmp_path)), Upload("b.exe", b"MZ")]
    with pytest.raises(UploadError, match="unsupported file type"):
        save_upload(files, ws / "uploads")
    assert left_behind(ws) == []


def test_the_upload_cap_stops_the_stream(ws, monkeypatch) -> None:
    """The cap holds while streaming: at most one chunk past it is read, and nothing stays."""
    monkeypatch.setenv("LADD_MAX_UPLOAD_BYTES", "1M")
    upload = Upload("images_best.pt", bytes(8 * 1024**2))
    with pytest.raises(UploadError, match="LADD_MAX_UPLOAD_BYTES"):
        save_upload([upload], ws / "uploads")
    assert upload.bytes_read <= 1024**2 + CHUNK
    assert left_behind(ws) == []


def test_unzipped_bytes_count_against_the_upload_cap(ws, monkeypatch) -> None:
    """A 5 MB member compressed to a few KB: counted by the bytes written, refused, removed."""
    monkeypatch.setenv("LADD_MAX_UPLOAD_BYTES", "2M")
    data = zip_bytes({"set/cat/0.png": png(0), "set/dog/0.png": bytes(5 * 1024**2)})
    assert len(data) < 100_000
    with pytest.raises(UploadError, match="LADD_MAX_UPLOAD_BYTES"):
        save_upload([Upload("set.zip", data)], ws / "uploads")
    assert left_behind(ws) == []


def test_too_many_zip_entries_are_refused(ws, monkeypatch) -> None:
    monkeypatch.setenv("LADD_MAX_ARCHIVE_ENTRIES", "3")
    with pytest.raises(UploadError, match="LADD_MAX_ARCHIVE_ENTRIES"):
        save_upload([Upload("set.zip", class_zip(2))], ws / "uploads")  # 4 entries
    assert left_behind(ws) == []


@pytest.mark.parametrize("member", ["../evil.png", "/abs/evil.png", "set/../../evil.png"])
def test_unsafe_member_paths_are_refused(ws, tmp_path, member) -> None:
    data = zip_bytes({"set/cat/0.png": png(0), member: png(1)})
    with pytest.raises(UploadError, match="unsafe member path"):
        save_upload([Upload("set.zip", data)], ws / "uploads")
    assert left_behind(ws) == []
    assert not list(tmp_path.rglob("evil.png"))


def test_content_no_reader_recognises_is_refused(ws) -> None:
    """A zip of notes is no set: refused, so that it never clutters the set list."""
    data = zip_bytes({"notes/readme.json": b"{}"})
    with pytest.raises(UploadError, match="not a recognised distilled set"):
        save_upload([Upload("notes.zip", data)], ws / "uploads")
    assert left_behind(ws) == []


def test_an_unreadable_zip_is_refused(ws) -> None:
    with pytest.raises(UploadError, match="not a readable zip"):
        save_upload([Upload("set.zip", b"PK\x03\x04 not really")], ws / "uploads")
    assert left_behind(ws) == []


def test_a_stream_that_fails_midway_leaves_nothing(ws) -> None:
    class Broken(Upload):
        def read(self, n: int | None = -1) -> bytes:
            if self.bytes_read:
                raise OSError("connection reset")
            return super().read(n)

    with pytest.raises(UploadError, match="connection reset"):
        save_upload([Broken("images_best.pt", bytes(3 * CHUNK))], ws / "uploads")
    assert left_behind(ws) == []


class _Runs:
    """Pickled with its class: a torch.save of it carries code (it would run on a full load)."""

    def __reduce__(self):
        return (print, ("this would have run",))


def test_a_pickle_carrying_upload_is_refused_not_listed(ws, tmp_path) -> None:
    """Issue #38: an upload whose images_best.pt carries a pickled object stayed listed as a
    set although every load refused it. The upload loads its torch files as tensors first
    (weights_only: nothing runs) and is refused with what is wrong; nothing stays."""
    images, labels = io.BytesIO(), io.BytesIO()
    torch.save({"images": torch.zeros(2, 3, 8, 8), "hook": _Runs()}, images)
    torch.save(torch.tensor([0, 1]), labels)
    files = [
        Upload("images_best.pt", images.getvalue()),
        Upload("labels_best.pt", labels.getvalue()),
    ]
    with pytest.raises(UploadError, match="pickled Python objects"):
        save_upload(files, ws / "uploads")
    assert left_behind(ws) == []
