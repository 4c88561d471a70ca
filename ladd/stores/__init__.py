"""Soft-label stores: the FKD family's per-epoch crops and labels, read without patching torch.

    from ladd.stores import open_store
    store = open_store("FKD_cutmix_fp16")         # any family, recognised by content
    store.info().lines()                           # family, epochs, crops, label dtype, bytes
    batch = store.batch(epoch=0, index=3)          # one StoreBatch, read lazily

Module map:
    base.py       StoreBatch (one batch in the common convention), StoreInfo, SoftLabelStore,
                  the reader registry
    reading.py    safe loading (weights_only + numpy scalars, size and archive caps) and checks
    fkd.py        epoch_<e>/batch_<b>.tar folders: SRe2L (CDA, FADRM, CV-DD), LPLD, EDC
    hald.py       HALD's epoch_<e>.tar + sampler_indices_dict.pt
    lpqld.py      LPQLD's flat batch_<n>.tar + sampler_indices_batch.json (top-k logits)
    converted.py  our memory-mapped safetensors layout (`ladd convert`), target_probs
    pairing.py    a store bound to its image folder (ImageFolder order, class count): SoftLabelSet
    replay.py     training from a store: each epoch's stored crops, flips and mixes (label mode
                  "store")

Readers register here, in priority order (ours first; folders told apart by their index files,
then by the length of their batch lists).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ladd.stores.base import (
    LABEL_KINDS,
    SoftLabelStore,
    StoreBatch,
    StoreError,
    StoreInfo,
    StoreReader,
    find_store_reader,
    register_store_reader,
    store_readers,
)
from ladd.stores.converted import ConvertedReader, convert_store, target_probs
from ladd.stores.fkd import EdcReader, LpldReader, Sre2lReader, sre2l_epoch_order
from ladd.stores.hald import HaldReader
from ladd.stores.lpqld import LpqldReader

for _reader in (
    ConvertedReader(),
    LpqldReader(),
    HaldReader(),
    LpldReader(),
    EdcReader(),
    Sre2lReader(),
):
    register_store_reader(_reader)


def open_store(path: str | Path, **options: Any) -> SoftLabelStore:
    """The soft-label store at `path`, whatever family wrote it (StoreError when none did).
    Options: `fkd_seed` (SRe2L-layout stores: the seed their order was drawn with, 42)."""
    p = Path(path).expanduser()
    return find_store_reader(p).open(p, **options)


__all__ = [
    "LABEL_KINDS",
    "SoftLabelStore",
    "StoreBatch",
    "StoreError",
    "StoreInfo",
    "StoreReader",
    "convert_store",
    "find_store_reader",
    "open_store",
    "register_store_reader",
    "sre2l_epoch_order",
    "store_readers",
    "target_probs",
]
