"""Our own store layout: one memory-mapped safetensors file, written once by `ladd convert`.

Reading an FKD folder costs a pickle load per batch (and SRe2L's order is rebuilt from a seed);
training reads this file instead: every tensor is a slice of a memory map, so a batch costs the
bytes of its rows and the pages stay shared between processes.

    rows           int32 (R,)      image index (ImageFolder order) of every stored crop
    coords         float32 (R, 4)  top, left, height, width as fractions
    flip           uint8 (R,)
    mix_index      int32 (R,)      partner row within the batch (-1: no mix)
    batch_offsets  int64 (NB + 1,) the rows of each batch
    epoch_offsets  int64 (E + 1,)  the batches of each epoch
    mix_kind       uint8 (NB,)     0 none, 1 CutMix, 2 Mixup
    mix_lam        float64 (NB,)
    mix_box        int32 (NB, 4)   x1, y1, x2, y2 (-1: none)
    labels         the labels as stored (float16 logits (R, K), probabilities, or top-k values
                   (R, k) with `label_indices` (R, k)); or, with a codec, the probabilities
                   softmax(logits / T) in that codec: `labels.<name>` with leading dims (R, 1)

The metadata key `ladd_store` holds JSON: the source (path, family, its facts and digest), how
the labels are kept (`labels`: "stored" or the codec spec, with the temperature the probabilities
were made at), the crop rounding, and a digest of the content. The file is written through a
memory map, batch by batch, so converting an ImageNet-1K store never holds it whole.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ladd.codecs import Codec, parse_codec
from ladd.files import atomic_write
from ladd.sets.base import DistilledFileError, read_safetensors_header
from ladd.stores.base import SoftLabelStore, StoreBatch, StoreError, StoreInfo, StoreReader
from ladd.stores.reading import coords_tensor, label_tensor

__all__ = ["ConvertedReader", "ConvertedStore", "convert_store", "target_probs"]

FORMAT_KEY = "ladd_store"
VERSION = 1
_MIX = {None: 0, "cutmix": 1, "mixup": 2}
_MIX_NAME = {v: k for k, v in _MIX.items()}
_NP = {
    torch.float16: (np.float16, "F16"),
    torch.float32: (np.float32, "F32"),
    torch.float64: (np.float64, "F64"),
    torch.int16: (np.int16, "I16"),
    torch.int32: (np.int32, "I32"),
    torch.int64: (np.int64, "I64"),
    torch.uint8: (np.uint8, "U8"),
}


def target_probs(
    batch: StoreBatch, temperature: float, num_classes: int | None = None
) -> torch.Tensor:
    """The probabilities a student is trained towards on `batch` (float32 (B, K)):
    softmax(logits / T) (SRe2L train_FKD.py:249); stored probabilities as they are (HALD); for
    top-k logits, softmax over the kept values / T scattered into zeros of length K (LPQLD's MR,
    train_FKD_LPQLD.py:753-764)."""
    x = batch.labels.float()
    if batch.label_kind == "probs":
        return x
    if batch.label_kind == "logits":
        return torch.softmax(x / temperature, dim=1)
    if num_classes is None or batch.label_indices is None:
        raise ValueError("top-k labels need the class count and their indices")
    out = torch.zeros(x.shape[0], num_classes, device=x.device)
    return out.scatter_(1, batch.label_indices.to(x.device), torch.softmax(x / temperature, dim=1))


# ---------------------------------------------------------------------------------------------
# Writing


def _plan_tensors(
    rows: int, batches: int, epochs: int, label_specs: dict[str, tuple[torch.dtype, tuple]]
) -> dict[str, tuple[torch.dtype, tuple[int, ...]]]:
    plan: dict[str, tuple[torch.dtype, tuple[int, ...]]] = {
        "rows": (torch.int32, (rows,)),
        "coords": (torch.float32, (rows, 4)),
        "flip": (torch.uint8, (rows,)),
        "mix_index": (torch.int32, (rows,)),
        "batch_offsets": (torch.int64, (batches + 1,)),
        "epoch_offsets": (torch.int64, (epochs + 1,)),
        "mix_kind": (torch.uint8, (batches,)),
        "mix_lam": (torch.float64, (batches,)),
        "mix_box": (torch.int32, (batches, 4)),
    }
    for name, (dtype, tail) in label_specs.items():
        plan[name] = (dtype, (rows, *tail))
    return plan


def convert_store(
    store: SoftLabelStore,
    out: str | Path,
    *,
    codec: str | Codec | None = None,
    temperature: float | None = None,
    num_classes: int | None = None,
    epochs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write `store` (its complete epochs, or the first `epochs`) to `out` in our layout.

    `codec` None keeps the labels exactly as stored; a codec spec ("float16", "topk:5,uint8")
    keeps the probabilities the student trains towards, softmax(logits / `temperature`), in that
    codec (so the file's label bytes are LADD's). `num_classes`: K for a top-k store.
    """
    info = store.info()
    n_epochs = info.epochs if epochs is None else int(epochs)
    if not 1 <= n_epochs <= info.epochs:
        raise StoreError(store.root, f"cannot convert {n_epochs} of {info.epochs} epochs")
    k = num_classes or info.num_classes
    sizes = [store.batch_sizes(e) for e in range(n_epochs)]
    first = store.batch(0, 0)
    chosen = parse_codec(codec) if codec is not None else None
    if chosen is not None and temperature is None and first.label_kind != "probs":
        raise ValueError("a codec keeps probabilities: give the temperature they are made at")
    if chosen is not None and k is None:
        raise ValueError("the class count is needed (a top-k store does not say it)")
    total_rows = sum(sum(s) for s in sizes)
    n_batches = sum(len(s) for s in sizes)
    if chosen is not None:
        assert k is not None
        label_specs = {
            f"labels.{name}": (spec.dtypes[0], tuple(s for s in (1, *spec.tail)))
            for name, spec in chosen.layout(k).items()
        }
        label_mode = {"labels": chosen.spec, "codec": chosen.name, "params": chosen.params}
    else:
        label_specs = {"labels": (first.labels.dtype, (int(first.labels.shape[1]),))}
        if first.label_indices is not None:
            label_specs["label_indices"] = (torch.int16, (int(first.label_indices.shape[1]),))
        label_mode = {"labels": "stored"}
    plan = _plan_tensors(total_rows, n_batches, n_epochs, label_specs)
    header: dict[str, Any] = {}
    offset = 0
    for name, (dtype, shape) in plan.items():
        nbytes = int(np.prod(shape)) * torch.empty((), dtype=dtype).element_size()
        header[name] = {
            "dtype": _NP[dtype][1],
            "shape": list(shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    meta = {
        "version": VERSION,
        "source": {
            "path": str(store.root),
            "family": info.family,
            "title": info.title,
            "digest": store.digest(),
            "info": info.to_dict(),
        },
        "label_kind": first.label_kind if chosen is None else "probs",
        "temperature": float(temperature) if temperature is not None else None,
        "num_classes": k,
        "images": info.images,
        "epochs": n_epochs,
        "batches_per_epoch": info.batches_per_epoch,
        "batch_size": info.batch_size,
        "crop_rounding": first.crop_rounding,
        "created": date.today().isoformat(),
        **label_mode,
    }

    def write(tmp: str) -> None:
        digest = hashlib.sha256()
        head = {**header}
        head_meta = {FORMAT_KEY: json.dumps({**meta, "digest": "0" * 20})}
        text = json.dumps({**head, "__metadata__": head_meta}).encode()
        pad = (8 - len(text) % 8) % 8 + 64  # room for the digest written at the end
        text += b" " * pad
        start = 8 + len(text)
        with open(tmp, "wb") as f:
            f.write(len(text).to_bytes(8, "little"))
            f.write(text)
            f.truncate(start + offset)
        mm = np.memmap(tmp, dtype=np.uint8, mode="r+", offset=start, shape=(offset,))
        views = {}
        for name, (dtype, shape) in plan.items():
            a, b = header[name]["data_offsets"]
            views[name] = mm[a:b].view(_NP[dtype][0]).reshape(shape)
        r = nb = 0
        views["epoch_offsets"][0] = 0
        views["batch_offsets"][0] = 0
        for e in range(n_epochs):
            for b in range(len(sizes[e])):
                batch = store.batch(e, b)
                n = len(batch)
                if n != sizes[e][b]:
                    raise StoreError(store.root, f"epoch {e} batch {b} holds {n} rows")
                sl = slice(r, r + n)
                views["rows"][sl] = batch.rows.numpy()
                views["coords"][sl] = batch.coords.numpy()
                views["flip"][sl] = batch.flip.numpy().astype(np.uint8)
                views["mix_index"][sl] = (
                    batch.mix_index.numpy() if batch.mix_index is not None else -1
                )
                views["mix_kind"][nb] = _MIX[batch.mix]
                views["mix_lam"][nb] = batch.mix_lam if batch.mix_lam is not None else 0.0
                views["mix_box"][nb] = batch.mix_box if batch.mix_box is not None else (-1,) * 4
                if chosen is not None:
                    probs = target_probs(batch, float(temperature or 1.0), k)
                    payload = chosen.encode(probs.unsqueeze(1))  # leading dims (B, 1)
                    for key, t in payload.items():
                        views[f"labels.{key}"][sl] = t.cpu().numpy()
                else:
                    views["labels"][sl] = batch.labels.numpy()
                    if batch.label_indices is not None:
                        views["label_indices"][sl] = batch.label_indices.numpy().astype(np.int16)
                for name in ("rows", "coords", "flip", "mix_index", *label_specs):
                    digest.update(views[name][sl].tobytes())
                r += n
                nb += 1
                views["batch_offsets"][nb] = r
                if progress is not None:
                    progress(nb, n_batches)
            views["epoch_offsets"][e + 1] = nb
        mm.flush()
        del views, mm
        final = {**meta, "digest": digest.hexdigest()[:20]}
        text2 = json.dumps({**head, "__metadata__": {FORMAT_KEY: json.dumps(final)}}).encode()
        if len(text2) > len(text):
            raise RuntimeError("the header grew")  # pragma: no cover (room was left for it)
        with open(tmp, "r+b") as f:
            f.seek(8)
            f.write(text2 + b" " * (len(text) - len(text2)))

    return atomic_write(out, write)


# ---------------------------------------------------------------------------------------------
# Reading


def _meta(path: Path) -> dict[str, Any] | None:
    try:
        header = read_safetensors_header(path) if path.is_file() else None
        if header is None or FORMAT_KEY not in header.metadata:
            return None
        header.require_complete(path)
    except DistilledFileError as err:
        if isinstance(err, StoreError):
            raise
        raise StoreError(path, err.problem) from err
    try:
        meta = json.loads(header.metadata[FORMAT_KEY])
    except ValueError as err:
        raise StoreError(path, f"corrupt {FORMAT_KEY} metadata ({err})") from err
    if not isinstance(meta, dict):
        raise StoreError(path, f"corrupt {FORMAT_KEY} metadata")
    return meta


class ConvertedStore(SoftLabelStore):
    family = "ladd"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        meta = _meta(path)
        if meta is None:
            raise StoreError(path, "not a store `ladd convert` wrote")
        if meta.get("version") != VERSION:
            raise StoreError(path, f"store layout version {meta.get('version')} is not {VERSION}")
        self.meta = meta
        from safetensors import safe_open

        self._file = safe_open(str(path), framework="pt")
        names = set(self._file.keys())
        need = {"rows", "coords", "flip", "mix_index", "batch_offsets", "epoch_offsets"}
        if not need <= names:
            raise StoreError(path, f"lacks the tensors {sorted(need - names)}")
        self.batch_offsets = self._file.get_tensor("batch_offsets")
        self.epoch_offsets = self._file.get_tensor("epoch_offsets")
        self.mix_kind = self._file.get_tensor("mix_kind")
        self.mix_lam = self._file.get_tensor("mix_lam")
        self.mix_box = self._file.get_tensor("mix_box")
        rows = int(self._file.get_slice("rows").get_shape()[0])
        bo, eo = self.batch_offsets, self.epoch_offsets
        if (
            bo.dim() != 1
            or eo.dim() != 1
            or int(bo[0]) != 0
            or int(bo[-1]) != rows
            or bool((bo[1:] < bo[:-1]).any())
            or int(eo[0]) != 0
            or int(eo[-1]) != bo.numel() - 1
            or bool((eo[1:] < eo[:-1]).any())
            or self.mix_kind.numel() != bo.numel() - 1
        ):
            raise StoreError(path, "its batch and epoch offsets are inconsistent")
        self.codec: Codec | None = None
        if meta.get("labels", "stored") != "stored":
            from ladd.codecs import build_codec

            self.codec = build_codec(meta["codec"], meta.get("params"))
        self.num_classes = meta.get("num_classes")

    def batches(self, epoch: int) -> int:
        return int(self.epoch_offsets[epoch + 1] - self.epoch_offsets[epoch])

    def __getstate__(self) -> dict[str, Any]:  # the memory map is reopened where unpickled
        return {"root": str(self.root)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(Path(state["root"]))  # type: ignore[misc]

    def batch_sizes(self, epoch: int) -> list[int]:
        a, b = int(self.epoch_offsets[epoch]), int(self.epoch_offsets[epoch + 1])
        return (self.batch_offsets[a + 1 : b + 1] - self.batch_offsets[a:b]).tolist()

    def _slice(self, name: str, a: int, b: int) -> torch.Tensor:
        return self._file.get_slice(name)[a:b]

    def batch(self, epoch: int, index: int) -> StoreBatch:
        self.check_batch(epoch, index)
        nb = int(self.epoch_offsets[epoch]) + index
        a, b = int(self.batch_offsets[nb]), int(self.batch_offsets[nb + 1])
        where = Path(f"{self.root}[epoch {epoch} batch {index}]")
        rows = self._slice("rows", a, b).long()
        coords = coords_tensor(self._slice("coords", a, b), where, b - a)
        flip = self._slice("flip", a, b).bool()
        kind = _MIX_NAME.get(int(self.mix_kind[nb]), "?")
        if kind == "?":
            raise StoreError(where, "unknown mix kind")
        mix_index = self._slice("mix_index", a, b).long() if kind else None
        if mix_index is not None and (
            bool((mix_index < 0).any()) or bool((mix_index >= b - a).any())
        ):
            raise StoreError(where, "the mix partner index points outside the batch")
        box = tuple(int(v) for v in self.mix_box[nb]) if kind == "cutmix" else None
        lam = float(self.mix_lam[nb]) if kind else None
        label_indices = None
        if self.codec is not None:
            payload = {
                key.removeprefix("labels."): self._slice(key, a, b)
                for key in self._file.keys()
                if key.startswith("labels.")
            }
            self.codec.check(payload, int(self.num_classes))
            labels = self.codec.decode_rows(payload, int(self.num_classes))[:, 0]
            label_kind = "probs"
        else:
            labels = label_tensor(self._slice("labels", a, b), where, b - a)
            label_kind = self.meta.get("label_kind", "logits")
            if label_kind == "topk_logits":
                label_indices = self._slice("label_indices", a, b).long()
        return StoreBatch(
            rows=rows,
            coords=coords,
            flip=flip,
            labels=labels,
            label_kind=label_kind,
            label_indices=label_indices,
            mix=kind,
            mix_index=mix_index,
            mix_lam=lam,
            mix_box=box,  # type: ignore[arg-type]
            crop_rounding=self.meta.get("crop_rounding", "box"),
        )

    def bind_images(self, count: int) -> None:
        rows = self._file.get_tensor("rows")
        if rows.numel() and (int(rows.max()) >= count or int(rows.min()) < 0):
            raise StoreError(self.root, f"names image {int(rows.max())} of a folder of {count}")

    def digest(self) -> str:
        return str(self.meta.get("digest", ""))

    def info(self) -> StoreInfo:
        m = self.meta
        src = m.get("source", {})
        label_bytes = sum(
            _slice_bytes(self._file.get_slice(k))
            for k in self._file.keys()
            if k in ("labels", "label_indices") or k.startswith("labels.")
        )
        labels = m.get("labels", "stored")
        top_k = None
        if m.get("label_kind") == "topk_logits":
            top_k = int(self._file.get_slice("labels").get_shape()[1])
        dtype = "codec " + labels if labels != "stored" else _slice_dtype(self._file, "labels")
        return StoreInfo(
            family=self.family,
            title=f"LADD's converted store (from {src.get('family', '?')})",
            root=self.root,
            epochs=int(m["epochs"]),
            batches_per_epoch=int(m["batches_per_epoch"]),
            batch_size=int(m["batch_size"]),
            images=m.get("images"),
            num_classes=m.get("num_classes"),
            label_kind=m.get("label_kind", "logits"),
            label_dtype=dtype,
            top_k=top_k,
            mix=next((_MIX_NAME[int(v)] for v in self.mix_kind if int(v)), None),
            files=1,
            bytes=os.path.getsize(self.root),
            label_bytes=label_bytes,
            order="stored: rows (converted from the source's order)",
            written_by=f"ladd convert {src.get('path', '?')}",
            notes=(
                (f"labels are probabilities at T = {m['temperature']:g} in codec {labels}",)
                if labels != "stored"
                else ()
            ),
        )

    def source_info(self) -> dict[str, Any]:
        return dict(self.meta.get("source", {}))


_DTYPE_BYTES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8, "I16": 2, "I32": 4, "I64": 8, "U8": 1}


def _slice_bytes(sl: Any) -> int:
    return int(np.prod(sl.get_shape())) * _DTYPE_BYTES.get(str(sl.get_dtype()), 4)


def _slice_dtype(f: Any, name: str) -> str:
    code = str(f.get_slice(name).get_dtype())
    return {"F16": "float16", "F32": "float32", "BF16": "bfloat16"}.get(code, code.lower())


class ConvertedReader(StoreReader):
    family = "ladd"
    title = "LADD's converted store"

    def detect(self, path: Path) -> bool:
        if not path.is_file():
            return False
        try:
            return _meta(path) is not None
        except StoreError:
            return True  # ours, but broken: let open() say why

    def open(self, path: Path, **options: Any) -> SoftLabelStore:
        return ConvertedStore(path)


def with_rows(batch: StoreBatch, rows: torch.Tensor) -> StoreBatch:
    """`batch` with its image indices replaced (the set's own row order)."""
    return replace(batch, rows=rows)
