"""Small files that claim far more than they hold (issue #38, class 1), built byte by byte.

Each is a few KB (or under a MB) on disk and declares gigabytes: a torch zip whose record says
it inflates to 3 GiB, a legacy torch pickle whose storage declares 8 GB, a stride-0 view of 4
bytes that claims 10^12 elements, a PNG of 1 x 1,000,000 pixels, a label of 10^10, a model
spec of 10^9 classes. Nothing here decodes or inflates them: that would be the bug itself.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zlib
from pathlib import Path

import torch

GIB = 1024**3


# ---------------------------------------------------------------------------- torch files


class _Storage:
    """Stands for storage "0" while pickling; written as torch writes a storage reference."""


_STORAGE = _Storage()


class _TensorRef:
    """Pickles as torch._utils._rebuild_tensor_v2 over storage "0" (torch's own layout)."""

    def __init__(self, size: tuple[int, ...], stride: tuple[int, ...]) -> None:
        self.size, self.stride = size, stride

    def __reduce__(self):
        args = (_STORAGE, 0, self.size, self.stride, False, collections.OrderedDict())
        return (torch._utils._rebuild_tensor_v2, args)


class _Pickler(pickle.Pickler):
    def __init__(self, f, numel: int) -> None:
        super().__init__(f, protocol=2)
        self.numel = numel

    def persistent_id(self, obj):
        if obj is _STORAGE:
            return ("storage", torch.FloatStorage, "0", "cpu", self.numel)
        return None


def data_pkl(obj, numel: int) -> bytes:
    """`obj` (holding _TensorRef items) pickled as torch.save's data.pkl, storage "0" of
    `numel` float32 elements."""
    buf = io.BytesIO()
    _Pickler(buf, numel).dump(obj)
    return buf.getvalue()


def write_zip(path: Path, entries: list[tuple[str, bytes, int, int, int]]) -> Path:
    """A zip of (name, stored bytes, method 0/8, declared size, crc) entries, sizes as given."""
    local, central = bytearray(), bytearray()
    date = (1 << 5) | 1  # 1980-01-01
    for name, payload, method, size, crc in entries:
        raw = name.encode()
        offset = len(local)
        sizes = (crc, len(payload), size, len(raw), 0)
        local += struct.pack("<IHHHHH", 0x04034B50, 20, 0, method, 0, date)
        local += struct.pack("<IIIHH", *sizes) + raw + payload
        central += struct.pack("<IHHHHHH", 0x02014B50, 20, 20, 0, method, 0, date)
        central += struct.pack("<IIIHH", *sizes) + struct.pack("<HHHII", 0, 0, 0, 0, offset)
        central += raw
    count = len(entries)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), len(local), 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(local) + bytes(central) + end)
    return path


def _stored(name: str, payload: bytes) -> tuple[str, bytes, int, int, int]:
    return (name, payload, 0, len(payload), zlib.crc32(payload))


def write_torch_zip(path: Path, pkl: bytes, record: tuple[bytes, int, int, int]) -> Path:
    """A torch.save zip (archive/...) with data.pkl `pkl` and data/0 = (bytes, method, declared
    size, crc)."""
    payload, method, size, crc = record
    return write_zip(
        path,
        [
            _stored("archive/data.pkl", pkl),
            ("archive/data/0", payload, method, size, crc),
            _stored("archive/byteorder", b"little"),
            _stored("archive/version", b"3\n"),
        ],
    )


def write_pt_deflate_claim(path: Path, nbytes: int = 3 * GIB) -> Path:
    """A ~1 KB torch zip whose deflate-compressed record declares `nbytes` (a lie: it holds
    1 KB of zeros) for a float32 tensor of nbytes / 4 elements: torch.load allocates the
    declared size before inflating."""
    stream = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = stream.compress(bytes(1024)) + stream.flush()
    numel = nbytes // 4
    return write_torch_zip(path, data_pkl(_TensorRef((numel,), (1,)), numel), (data, 8, nbytes, 0))


def write_pt_deflate_bomb(path: Path, nbytes: int = 512 * 1024**2) -> Path:
    """A valid torch zip (~0.5 MB) whose deflated record really inflates to `nbytes` of zeros
    (issue #38: a 3 MB `.pt` reached several GB before it was refused). One full-flush block
    of 64 MiB is repeated, so building it takes a second."""
    chunk = 64 * 1024**2
    assert nbytes % chunk == 0
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = co.compress(bytes(chunk)) + co.flush(zlib.Z_FULL_FLUSH)
    stream = block * (nbytes // chunk) + zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    crc, zeros = 0, bytes(chunk)
    for _ in range(nbytes // chunk):
        crc = zlib.crc32(zeros, crc)
    numel = nbytes // 4
    return write_torch_zip(
        path, data_pkl(_TensorRef((numel,), (1,)), numel), (stream, 8, nbytes, crc)
    )


def write_pt_view_claim(path: Path, side: int = 10**6, obj=None) -> Path:
    """A torch zip of 4 bytes of data whose tensor is a (side, side) stride-0 view of them:
    10^12 float32 elements claimed, materialised by the first operation on it. `obj` wraps
    the tensor (a function of it), e.g. into a DC result file's dict."""
    view = _TensorRef((side, side), (0, 0))
    pkl = data_pkl(obj(view) if obj is not None else view, 1)
    data = bytes(4)
    return write_torch_zip(path, pkl, (data, 0, len(data), zlib.crc32(data)))


def write_pt_legacy_claim(path: Path, numel: int = 2**31 - 1) -> Path:
    """A legacy (torch < 1.6) torch file of ~400 bytes whose storage declares `numel` float32
    elements (8 GB) and holds 12 bytes: torch allocates the declared size before reading."""
    buf = io.BytesIO()
    torch.save(torch.zeros(3), buf, _use_new_zipfile_serialization=False)
    data = buf.getvalue()
    f = io.BytesIO(data)
    for _ in range(3):  # magic number, protocol version, sys_info
        pickle.load(f)
    start = f.tell()
    main = data[start:]
    small = b"K\x03"  # BININT1 3: the storage's numel, then the tensor's size
    first = main.index(small)
    second = main.index(small, first + 2)
    big = b"J" + struct.pack("<i", numel)
    main = main[:first] + big + main[first + 2 : second] + big + main[second + 2 :]
    path.write_bytes(data[:start] + main)
    return path


def write_pt_tensors(path: Path, obj) -> Path:
    """An ordinary torch.save file (tensors that hold what they claim)."""
    torch.save(obj, path)
    return path


# ---------------------------------------------------------------------------- images


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def write_elongated_png(path: Path, width: int = 1, height: int = 1_000_000) -> Path:
    """A valid 8-bit greyscale PNG of width x height grey pixels: ~3 KB for 1 x 1,000,000,
    few pixels (under every pixel cap), yet resizing it whole to 32 px on its short side
    asked for 32 x 32,000,000 floats x 3 channels = 12 GB (issue #38)."""
    row = bytes([0]) + bytes([128]) * width
    co = zlib.compressobj(9)
    idat = b"".join(co.compress(row) for _ in range(height)) + co.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )
    return path


def write_small_png(path: Path, side: int = 8, value: int = 90) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    row = bytes([0]) + bytes([value]) * side
    idat = zlib.compress(row * side)
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )
    return path


# ---------------------------------------------------------------------------- safetensors


def write_safetensors_claim(path: Path, shape: tuple[int, ...], metadata: dict | None) -> Path:
    """A safetensors file whose header declares an F32 tensor `images` of `shape` and holds 4
    bytes of data: the header claims shape-many floats."""
    import json

    count = 1
    for s in shape:
        count *= s
    header = {"images": {"dtype": "F32", "shape": list(shape), "data_offsets": [0, 4 * count]}}
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + bytes(4))
    return path
