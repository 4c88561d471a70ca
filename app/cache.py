"""Cached reads of the workspace for the pages: sets, labelers, runs, models, test images.

Everything is keyed on a path plus its modification time (and the parameters that matter), so a
file rewritten by a job is read again and an unchanged one never is. Tensors and models are
cached with st.cache_resource (shared, never copied: treat them as read-only); small derived
arrays with st.cache_data. Arguments starting with "_" are not hashed.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
import torch

from app.paths import check_path, check_source, workspace_root
from ladd.store import Workspace

SET_SUFFIXES = (".safetensors", ".pt", ".pth", ".zip")


def workspace() -> Workspace:
    return _workspace(str(workspace_root()))


@st.cache_resource(show_spinner=False)
def _workspace(root: str) -> Workspace:
    return Workspace(root)


def mtime(path: str | Path) -> float:
    """Modification time (newest file inside, for a folder); 0 when missing."""
    p = Path(path)
    try:
        if p.is_dir():
            return max([p.stat().st_mtime] + [c.stat().st_mtime for c in p.iterdir()])
        return p.stat().st_mtime
    except OSError:
        return 0.0


def rel(path: str | Path) -> str:
    """A path as shown and kept in the URL: relative to the workspace when inside it."""
    p = Path(path).resolve()
    root = workspace_root()
    return str(p.relative_to(root)) if p.is_relative_to(root) else str(p)


# ---------------------------------------------------------------------------------------------
# Listings (cheap; not cached so new files appear at once)


def list_sets() -> list[str]:
    """Distilled and label-augmented sets in the workspace (sets/ and uploads/), newest first."""
    from app.uploads import loadable

    ws = workspace()
    found = [
        p
        for p in ws.sets_dir.iterdir()
        if not p.name.startswith(".") and (p.is_dir() or p.suffix in SET_SUFFIXES)
    ]
    uploads = ws.root / "uploads"
    if uploads.is_dir():
        found += [loadable(p) for p in uploads.iterdir() if p.is_dir() and any(p.iterdir())]
    found.sort(key=lambda p: (-mtime(p), p.name))
    return [rel(p) for p in found]


def list_labelers() -> list[str]:
    """Labeler folders (each with epoch_NNN.safetensors checkpoints) in the workspace."""
    from ladd.labeler import list_checkpoints

    ws = workspace()
    dirs = [d for d in sorted(ws.labelers_dir.iterdir()) if d.is_dir() and list_checkpoints(d)]
    return [rel(d) for d in dirs]


def list_checkpoints(labeler_dir: str) -> list[str]:
    from ladd.labeler import list_checkpoints as _list

    return [rel(p) for p in _list(check_path(labeler_dir))]


def list_runs(kind: str | None = "train") -> list[Any]:
    """Typed run summaries (ladd.summaries.RunSummary) of the workspace, newest first."""
    from ladd.summaries import list_summaries

    return list_summaries(workspace(), kind)


# ---------------------------------------------------------------------------------------------
# Sets


ReadOptions = tuple[tuple[str, Any], ...]  # ladd.sets.load_set keyword arguments, hashable


def load_set(path: str, options: ReadOptions = ()) -> Any:
    """A DistilledSet or LabelAugmentedSet by (workspace-relative or allowed) path; `options`:
    how to read it (format, source, mean/std, ZCA, experiment, describe_only)."""
    p = check_path(path)
    return _load_set(str(p), mtime(p), tuple(options))


@st.cache_resource(show_spinner="Reading the whole set ...", max_entries=16)
def _load_set(path: str, stamp: float, options: ReadOptions = ()) -> Any:
    # The view's own set where its format is loaded whole to view it: never a second copy.
    return _set_view(path, stamp, options).load()


def set_view(path: str, options: ReadOptions = ()) -> Any:
    """A ladd.sets.view.SetView of a set: its description, and its images read when a page
    shows them (an image folder decodes only those; 10,000 ImageNet-1K files are not decoded
    to show one page of classes). Pages open sets with this; `load_set` is for whole-set work."""
    p = check_path(path)
    return _set_view(str(p), mtime(p), tuple(options))


@st.cache_resource(show_spinner="Reading the set ...", max_entries=16)
def _set_view(path: str, stamp: float, options: ReadOptions = ()) -> Any:
    from ladd.sets.view import open_view

    kwargs = dict(options)
    source = kwargs.get("source")
    if source is not None:
        kwargs["source"] = check_source(source)
    if kwargs.get("zca_source") is not None:
        kwargs["zca_source"] = check_source(kwargs["zca_source"])
    return open_view(path, cache_dir=workspace().cache_dir, **kwargs)


def set_codec(path: str) -> str | None:
    """The label codec of a label-augmented set file (its header only), else None."""
    from ladd.sets.augmented import file_codec

    try:
        p = check_path(path)
    except (ValueError, OSError):
        return None
    return file_codec(p)


def set_pixels(path: str, options: ReadOptions = ()) -> np.ndarray:
    """A set's images as (M, H, W, 3) uint8 for display."""
    p = check_path(path)
    return _set_pixels(str(p), mtime(p), tuple(options))


@st.cache_data(show_spinner=False, max_entries=16)
def _set_pixels(path: str, stamp: float, options: ReadOptions = ()) -> np.ndarray:
    from ladd.dense import set_uint8_images

    return _as_hwc(set_uint8_images(_load_set(path, stamp, options)))


def set_pixels_at(path: str, indices: tuple[int, ...], options: ReadOptions = ()) -> np.ndarray:
    """Some of a set's images (positions `indices`, in that order) as (m, H, W, 3) uint8: what
    a view shows (one image, a page of classes) without converting the whole set."""
    p = check_path(path)
    return _set_pixels_at(str(p), mtime(p), tuple(options), tuple(int(i) for i in indices))


def image_pixels(path: str, index: int, options: ReadOptions = ()) -> np.ndarray:
    """One image of a set as (H, W, 3) uint8."""
    return set_pixels_at(path, (int(index),), options)[0]


@dataclass(frozen=True)
class _SetImages:
    """What ladd.dense.set_uint8_images reads of a set (images, mean/std, ZCA), for a few of
    its images: the conversion is per image, so a subset converts as the whole set would."""

    images: torch.Tensor
    mean: Any
    std: Any
    zca: Any


@st.cache_data(show_spinner=False, max_entries=64)
def _set_pixels_at(
    path: str, stamp: float, options: ReadOptions, indices: tuple[int, ...]
) -> np.ndarray:
    from ladd.dense import set_uint8_images

    view = _set_view(path, stamp, options)
    picked = _SetImages(view.images_at(indices), view.mean, view.std, view.zca)  # (m, C, H, W)
    return _as_hwc(set_uint8_images(picked))


def _as_hwc(x: torch.Tensor) -> np.ndarray:
    """(M, C, H, W) uint8 -> (M, H, W, 3) numpy, grey images repeated to RGB."""
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.permute(0, 2, 3, 1).contiguous().numpy()


# ---------------------------------------------------------------------------------------------
# Labelers and dense labels


def load_labeler(path: str) -> Any:
    p = check_path(path)
    return _load_labeler(str(p), mtime(p))


@st.cache_resource(show_spinner=False, max_entries=32)
def _load_labeler(path: str, stamp: float) -> Any:
    from ladd.labeler import load_labeler as _load

    return _load(path, device="cpu")


@st.cache_data(show_spinner=False, max_entries=64)
def image_dense_labels(
    set_path: str,
    set_stamp: float,
    labeler_path: str,
    lab_stamp: float,
    n: int,
    r: float,
    index: int,
) -> np.ndarray:
    """Dense labels of one image of a set under one labeler: (n*n, K) float32."""
    from ladd.dense import generate_dense_labels

    view = _set_view(set_path, set_stamp)
    lab = _load_labeler(labeler_path, lab_stamp)
    x = view.images_at([index])
    with model_lock(labeler_path):
        dense = generate_dense_labels(x, lab.model, n, r, device="cpu")
    return dense[0].numpy()


@contextlib.contextmanager
def _labelers_held(
    labeler_paths: tuple[str, ...], stamps: tuple[float, ...]
) -> Iterator[list[Any]]:
    """The labelers (cached), each model's lock held while the block uses them, taken in one
    order everywhere (sorted paths), so that two pages never deadlock."""
    labs = [_load_labeler(p, m) for p, m in zip(labeler_paths, stamps, strict=True)]
    with contextlib.ExitStack() as held:
        for p in sorted(set(labeler_paths)):
            held.enter_context(model_lock(p))
        yield labs


@st.cache_data(
    show_spinner="Labelling every crop of the set with each checkpoint ...", max_entries=32
)
def epoch_summary(
    set_path: str,
    set_stamp: float,
    labeler_paths: tuple[str, ...],
    stamps: tuple[float, ...],
    n: int,
    r: float,
) -> list[dict[str, float]]:
    """Fig. 5 numbers: per labeler checkpoint, mean max-probability and entropy over the set."""
    from ladd.crop_stats import crop_stats_across

    ds = _load_set(set_path, set_stamp)
    with _labelers_held(labeler_paths, stamps) as labs:
        stats = crop_stats_across(ds, labs, n, r, device="cpu")
    return [{"epoch": int(e), **s} for e, s in sorted(stats.items())]


# ---------------------------------------------------------------------------------------------
# Runs: saved models, results, real test images


def run_result(run_id: int) -> dict[str, Any]:
    """result.json of a training run (per-class accuracy, confusion, loss curves, ...)."""
    ws = workspace()
    path = ws.db.runs_dir / str(int(run_id)) / "result.json"
    return _read_json(str(path), mtime(path))


@st.cache_data(show_spinner=False, max_entries=64)
def _read_json(path: str, stamp: float) -> dict[str, Any]:
    import json

    if not Path(path).is_file():
        return {}
    return json.loads(Path(path).read_text(encoding="utf-8"))


def load_model(path: str) -> torch.nn.Module:
    p = check_path(path)
    return _load_model(str(p), mtime(p))


@st.cache_resource(show_spinner=False, max_entries=16)
def _load_model(path: str, stamp: float) -> torch.nn.Module:
    from ladd.store import load_model as _load

    return _load(path, device="cpu")


@st.cache_resource(show_spinner=False)
def _locks() -> dict[str, threading.Lock]:
    return {}


def model_lock(path: str) -> threading.Lock:
    """The lock of one shared model file (keyed by its resolved path): CAM hooks and eval/train
    flips on a cached model must not interleave between sessions."""
    locks = _locks()
    return locks.setdefault(str(check_path(path)), threading.Lock())


CAM_PER_CLASS = 20  # real test images a class to pick CAM images from (fewer for many classes:
# ladd.demo.cam_per_class, 4 a class of ImageNet-1K)
CAM_POOL = 1000  # at most this many of them are scored to pick from (a seeded draw of more)


def cam_inputs(source: str, image_size: int | None = None) -> Any:
    """Real test images of a source to pick CAM images from (the demo's file when there is
    one, else drawn from the source and saved), built once per workspace.

    `source` comes from a run's record (data, not a permission): an image folder outside the
    dashboard's allowed roots is refused (app.paths.check_source)."""
    return _cam_inputs(str(workspace_root()), check_source(source), image_size)


@st.cache_resource(show_spinner="Loading real test images ...", max_entries=8)
def _cam_inputs(root: str, source: str, image_size: int | None) -> Any:
    from ladd.demo import cam_inputs as _build

    return _build(Workspace(root), source, image_size, per_class=CAM_PER_CLASS)


def model_size(run: Any) -> int | None:
    """The image size a run's models take (from the first model's spec)."""
    if not run.model_files:
        return None
    spec = getattr(load_model(run.model_files[0]), "spec", None)
    return int(spec.image_size) if spec is not None else None


def _run_key(run: Any) -> tuple[str, float, str, float]:
    """What a run's predictions depend on: its first model file and its set, with mtimes."""
    if not run.model_files:
        raise ValueError(f"run #{run.id} kept no model weights")
    if not run.set_path:
        raise ValueError(f"run #{run.id} does not record its set, so its input space is unknown")
    m, s = check_path(run.model_files[0]), check_path(run.set_path)
    return (str(m), mtime(m), str(s), mtime(s))


def run_predictions(run: Any, images: Any, pool: tuple[int, ...] | None = None) -> Any:
    """ladd.compare.Predictions of a run's first model on real images (an ImageSet), or on
    its images at positions `pool` only, read in the run's own input space (run_inputs)."""
    key = _run_key(run)
    pool = None if pool is None else tuple(int(i) for i in pool)
    count = len(images.labels)
    return _run_predictions(key, images.info.name, count, pool, _run=run, _images=images)


@st.cache_data(show_spinner="Predicting the test images ...", max_entries=32)
def _run_predictions(
    key: tuple, source: str, count: int, pool: tuple[int, ...] | None, *, _run: Any, _images: Any
) -> Any:
    from ladd.compare import predict

    images = _images if pool is None else _images.subset(torch.as_tensor(pool))
    x = run_inputs(_run, images)
    model = load_model(key[0])
    with model_lock(key[0]):
        return predict(model, x)


def cam_grid(
    runs: list[Any],
    names: list[str],
    images: Any,
    indices: tuple[int, ...],
    method: str,
    explain_true: bool,
) -> Any:
    """The ladd.compare.CamGrid of `runs` (rows) on images[indices] (columns)."""
    keys = tuple(_run_key(r) for r in runs)
    return _cam_grid(
        keys,
        tuple(names),
        images.info.name,
        len(images.labels),
        tuple(int(i) for i in indices),
        method,
        explain_true,
        _runs=runs,
        _images=images,
    )


@st.cache_data(show_spinner="Computing class activation maps ...", max_entries=32)
def _cam_grid(
    keys: tuple,
    names: tuple[str, ...],
    source: str,
    count: int,
    indices: tuple[int, ...],
    method: str,
    explain_true: bool,
    *,
    _runs: list[Any],
    _images: Any,
) -> Any:
    from dataclasses import replace

    from ladd.compare import cam_grid_on

    shown = _images.subset(torch.as_tensor(indices))  # only the columns, in each input space
    models = [load_model(key[0]) for key in keys]
    inputs = [run_inputs(run, shown) for run in _runs]  # each run's own input space
    grid = cam_grid_on(
        models,
        inputs,
        shown,
        range(len(indices)),
        list(names),
        method=method,
        explain_true=explain_true,
        guard=lambda r: model_lock(keys[r][0]),
    )
    return replace(grid, indices=np.asarray(indices, np.int64))  # positions in `_images`


def run_inputs(run: Any, images: Any) -> torch.Tensor:
    """Real test images (an ImageSet) in the input space a run's models were trained in: the
    run's set's mean/std and ZCA (ladd.deploy.eval_inputs, what evaluation used)."""
    from ladd.deploy import eval_inputs

    if not run.set_path:
        raise ValueError(f"run #{run.id} does not record its set, so its input space is unknown")
    options = tuple(sorted(run.set_reading().load_options().items()))
    return eval_inputs(set_view(run.set_path, options), images, torch.device("cpu"))


def class_stats(
    path: str, options: ReadOptions = (), classes: tuple[int, ...] | None = None
) -> Any:
    """Per-class pixel statistics of a set (ladd.data.class_pixel_stats) as a DataFrame: of
    every class, or of `classes` only (their images alone are converted; the "all" row is then
    over those classes)."""
    import pandas as pd

    from ladd.classes import class_members
    from ladd.data import class_pixel_stats

    ds = set_view(path, options)
    names = list(ds.class_names or [str(k) for k in range(int(ds.labels.max()) + 1)])
    if classes is None:
        pixels = torch.from_numpy(set_pixels(path, options))
        labels, shown = ds.labels, names
    else:
        picked = class_members(ds.labels.numpy(), classes)
        pixels = torch.from_numpy(set_pixels_at(path, tuple(picked.tolist()), options))
        # Each picked image's position among `classes`, so that row k is classes[k].
        where = {c: k for k, c in enumerate(classes)}
        labels = torch.tensor([where[int(c)] for c in ds.labels[picked]], dtype=torch.long)
        shown = [names[c] for c in classes]
    rows = []
    for row in class_pixel_stats(pixels.permute(0, 3, 1, 2), labels, shown):  # (M, 3, H, W)
        flat = {"class": row["class"], "images": row["images"]}
        if row["images"]:
            for ch, v in zip("RGB", row["mean"], strict=False):
                flat[f"mean {ch}"] = round(v, 3)
            flat["std"] = round(row["std"], 3)
            flat["std R/G/B"] = " / ".join(f"{v:.3f}" for v in row["std_per_channel"])
            flat["min"], flat["max"] = round(row["min"], 3), round(row["max"], 3)
        rows.append(flat)
    return pd.DataFrame(rows)


def storage_base(path: str) -> dict[str, float]:
    """Zip bytes of a set's uint8 images + hard labels, and its classes/images (for overheads)."""
    p = check_path(path)
    return _storage_base(str(p), mtime(p))


@st.cache_data(show_spinner="Measuring the set's compressed size ...", max_entries=16)
def _storage_base(path: str, stamp: float) -> dict[str, float]:
    from ladd.dense import set_base_bytes

    ds = _load_set(path, stamp)
    out = {
        "base_bytes": float(set_base_bytes(ds)),
        "images": len(ds),
        "classes": len(ds.class_names),
    }
    if hasattr(ds, "dense"):
        from ladd.dense import set_storage_report

        rep = set_storage_report(ds)
        out.update(
            measured_n=ds.n,
            measured_r=ds.r,
            measured_overhead=rep.overhead,
            measured_dense_overhead=rep.dense_only_overhead,
            measured_codec=ds.codec.spec,
        )
    return out


def crops_of(
    path: str, index: int, n: int, r: float
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """The n*n crops of one image, (n*n, side, side, 3) uint8, and their boxes."""
    from ladd.subsample import crop_boxes, crop_views

    pixels = image_pixels(path, index)  # (H, W, 3)
    img = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0)  # (1, 3, H, W)
    crops = crop_views(img, n, r)[0]  # (n*n, 3, side, side)
    return crops.permute(0, 2, 3, 1).numpy(), crop_boxes(int(img.shape[-1]), n, r)


def labeler_epochs(labeler_dir: str) -> dict[int, str]:
    """A labeler folder's checkpoints by epoch (workspace-relative paths)."""
    from ladd.labeler import read_meta

    return {read_meta(check_path(p)).epoch: p for p in list_checkpoints(labeler_dir)}


def input_space_problems(set_path: str, checkpoint: str) -> list[str]:
    """Why a labeler cannot label a set (normalisation, ZCA, size, classes); empty if it can."""
    from ladd.dense import check_input_space

    return check_input_space(set_view(set_path), load_labeler(checkpoint).meta)


def dense_by_epoch(
    set_path: str, checkpoints: dict[int, str], n: int, r: float, index: int
) -> dict[int, np.ndarray]:
    """Dense labels (n*n, K) of one image under each checkpoint, by epoch (cached per call)."""
    s = check_path(set_path)
    out = {}
    for epoch, ckpt in sorted(checkpoints.items()):
        c = check_path(ckpt)
        out[epoch] = image_dense_labels(str(s), mtime(s), str(c), mtime(c), n, r, index)
    return out


def summary_by_epoch(set_path: str, checkpoints: dict[int, str], n: int, r: float) -> Any:
    """The Fig. 5 table: one row per checkpoint (epoch, mean max-probability, entropy, ...)."""
    import pandas as pd

    s = check_path(set_path)
    paths = tuple(str(check_path(checkpoints[e])) for e in sorted(checkpoints))
    rows = epoch_summary(str(s), mtime(s), paths, tuple(mtime(p) for p in paths), n, r)
    return pd.DataFrame(rows)


def crop_values(dense: np.ndarray, metric: str, klass: int) -> tuple[np.ndarray, float]:
    """One number per crop from (n*n, K) dense labels, and the colour scale's top."""
    from ladd.crop_stats import crop_metric

    values, top = crop_metric(torch.from_numpy(dense), metric, klass)
    return values.numpy(), top


# -- soft-label stores and scores (ladd.stores, ladd.score) ---------------------------------


def soft_label_set(set_path: str, store_path: str) -> Any:
    """A set's images paired with a soft-label store beside them (ladd.stores.pairing): both
    paths checked against the allow-list; the set read as an image folder is (describe-only:
    the images as its files give them)."""
    s, t = check_path(set_path), check_path(store_path)
    return _soft_label_set(str(s), mtime(s), str(t), mtime(t))


@st.cache_resource(show_spinner="Reading the soft-label store ...", max_entries=4)
def _soft_label_set(set_path: str, s_stamp: float, store_path: str, t_stamp: float) -> Any:
    from ladd.sets import load_set
    from ladd.stores.pairing import open_soft_label_set

    ds = load_set(set_path, describe_only=True, cache_dir=workspace().cache_dir)
    return open_soft_label_set(set_path, store_path, dataset=ds)


def store_crop(set_path: str, store_path: str, epoch: int, batch: int, row: int) -> Any:
    """One stored crop as ladd.stores.view.crop_view gives it."""
    from ladd.stores.view import crop_view

    return crop_view(soft_label_set(set_path, store_path), epoch, batch, row)


def score_results() -> dict[str, dict[str, Any]]:
    """Every score to show, by a label: the workspace's score runs (their score.json) and the
    score records of docs/results (part 9)."""
    import json

    from app.records import record_folders

    found: dict[str, dict[str, Any]] = {}
    for run in workspace().db.list_runs("score"):
        path = workspace().db.runs_dir / str(run.id) / "score.json"
        if run.status == "done" and path.is_file():
            found[f"run {run.id}: {run.config.get('score', {}).get('name', 'score')}"] = _read_json(
                str(path), mtime(path)
            )
    for where, folder in record_folders().items():
        for path in sorted(Path(folder).glob("*.json")):
            try:
                rec = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(rec, dict) and rec.get("part") == "9" and "score" in rec:
                found[f"{where}: {path.stem}"] = rec["score"]
    return found


# ---------------------------------------------------------------------------------------------
# Per-crop drift (ladd.drift): one image's crops, or every crop of the set per labeler epoch


@st.cache_data(show_spinner=False, max_entries=64)
def _image_drift(
    set_path: str,
    set_stamp: float,
    labeler_path: str,
    lab_stamp: float,
    n: int,
    r: float,
    index: int,
) -> dict[str, Any]:
    from ladd.drift import labeler_drift

    view = _set_view(set_path, set_stamp)
    lab = _load_labeler(labeler_path, lab_stamp)
    x = view.images_at([index])  # one image: its n*n crops and the image itself
    with model_lock(labeler_path):
        d = labeler_drift(x, view.labels[index : index + 1], lab.model, n, r)
    return {
        "js": d.js[0].numpy(),
        "drifted": d.drifted[0].numpy(),
        "top": d.top[0].numpy(),
        "rule": d.rule,
    }


def image_drift(
    set_path: str, checkpoints: dict[int, str], n: int, r: float, index: int
) -> dict[int, dict[str, Any]]:
    """Drift of one image's n*n crops under each checkpoint, by epoch: JS to the labeler's label
    of the whole image, the drift flags, the crops' top classes."""
    s = check_path(set_path)
    out = {}
    for epoch, ckpt in sorted(checkpoints.items()):
        c = check_path(ckpt)
        out[epoch] = _image_drift(str(s), mtime(s), str(c), mtime(c), n, r, index)
    return out


@st.cache_data(show_spinner="Labelling every crop of the set for its drift ...", max_entries=32)
def _drift_by_epoch(
    set_path: str,
    set_stamp: float,
    labeler_paths: tuple[str, ...],
    stamps: tuple[float, ...],
    n: int,
    r: float,
    bins: int,
) -> list[dict[str, Any]]:
    from ladd.drift import drift_across

    ds = _load_set(set_path, set_stamp)
    with _labelers_held(labeler_paths, stamps) as labs:
        rows = drift_across(ds, labs, n, r, device="cpu", bins=bins)
    return [{"epoch": int(e), **row} for e, row in sorted(rows.items())]


def drift_by_epoch(
    set_path: str, checkpoints: dict[int, str], n: int, r: float, bins: int = 20
) -> list[dict[str, Any]]:
    """Per checkpoint: the set's drift summary and the histogram of every crop's JS."""
    s = check_path(set_path)
    paths = tuple(str(check_path(checkpoints[e])) for e in sorted(checkpoints))
    return _drift_by_epoch(str(s), mtime(s), paths, tuple(mtime(p) for p in paths), n, r, bins)
