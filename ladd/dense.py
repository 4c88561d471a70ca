"""Dense labels (paper Algorithm 1), label augmentation, storage overhead, per-crop statistics.

For every distilled image x_i and every static crop S_j(x_i) (ladd.subsample), the dense label is
y^d_{i,j} = softmax(g(S_j(x_i)) / T), T = 1 by default: an (N*N, K) matrix per image.

The labeler must see its own input space: images normalised with the same mean/std (or both in
ZCA space). A mismatch does not crash, it silently ruins every label, so `augment` refuses it
unless asked with `allow_mismatch=True`.

`augment` returns a ladd.sets.LabelAugmentedSet (the type and its file live there).
"""

from __future__ import annotations

import io
import time
import zipfile
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ladd.codecs import DEFAULT_CODEC
from ladd.device import resolve_device
from ladd.flops import inference_flops_per_sample
from ladd.limits import Limits, current_limits
from ladd.samplers import cut_boxes
from ladd.sets import LabelAugmentedSet, has_zca
from ladd.subsample import check_grid, sub_sample, sub_sample_range

# ---------------------------------------------------------------------------------------------
# Algorithm 1


# Crops per forward pass by default: small on the CPU, large on a GPU (labelling is bound by the
# labeler's forward there; bench.dense_speed measures batch 256 / 1024 / 4096).
DENSE_BATCH = {"cpu": 256, "cuda": 4096}
# Below this many crops a compiled labeler forward cannot repay its compile time (tens of
# seconds) at ~15k crops/s eager (docs/benchmarks.md): "auto" compiles from here on.
COMPILE_MIN_CROPS = 1_000_000


@torch.no_grad()
def generate_dense_labels(
    images: torch.Tensor,
    labeler_model: nn.Module,
    n: int,
    r: float,
    *,
    batch_size: int | None = None,
    temperature: float = 1.0,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    compile: str = "off",
    codec: Any = None,
    limits: Limits | None = None,
    sampler: Any = None,
) -> Any:
    """Dense labels softmax(g(S_j(x_i)) / T) for all images and crops: [M, n*n, K] float32, on
    the device `images` are on (the labeler runs on `device`, default the labeler's own).

    `sampler` (a ladd.samplers Sampler or spec): crops other than the N x R grid (n and r are
    then unused); its J crops per image take the place of the n*n.

    `codec` (a ladd.codecs Codec or spec): each finished batch of images is encoded at once and
    an EncodedDense (on `images`' device) is returned instead; the [M, n*n, K] float tensor is
    never built (one batch of images' labels at a time, on the device).

    `images` are normalised (M, C, H, W) in the labeler's input space. Work is batched over
    images x crops: about `batch_size` crops per forward pass (default DENSE_BATCH per device);
    a grid of more than `batch_size` crops is labelled a slice of one image's crops at a time.
    The memory this needs (one batch of crops, the [M, n*n, K] result) is checked against the
    max_crop_bytes cap (ladd.limits) before it is allocated. precision "bf16" ("auto": bf16 on
    CUDA, fp32 elsewhere) runs the labeler's forward under bf16 autocast, softmax in fp32;
    measured against fp32 labels in tests/test_dense_speed_paths.py (the tolerance is stated
    there). compile: "off" (the default), a torch.compile mode for the labeler's forward, or
    "auto" (compile on CUDA from COMPILE_MIN_CROPS crops on). Compiled batches keep one shape:
    the last one is padded and its padding dropped. Compiling writes inductor's caches where
    TORCHINDUCTOR_CACHE_DIR says (ladd.compile_cache.use_compile_cache sets it for a front
    end's process); this function sets no environment variable. `limits`: the caps checked
    (max_n, max_crop_bytes); None: the LADD_MAX_* environment caps.
    """
    limits = limits if limits is not None else current_limits()
    boxes = None
    if sampler is not None:
        from ladd.samplers import parse_sampler

        sampler = parse_sampler(sampler)
        if sampler.grid is not None:
            n, r = sampler.grid
        else:
            boxes = sampler.boxes(int(images.shape[-1]))
    if boxes is None:
        check_grid(n, r, limits=limits)  # also the max_n cap
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if images.dim() != 4:
        raise ValueError(f"expected images (M, C, H, W), got shape {tuple(images.shape)}")
    m, c, h, w = images.shape
    if m == 0:
        raise ValueError("no images to label")
    from ladd.device import resolve_precision
    from ladd.trainers.compile import compile_fn

    dev = resolve_device(device) if device is not None else next(labeler_model.parameters()).device
    bf16 = resolve_precision(precision, dev) == "bf16"
    crops_per_image = n * n if boxes is None else len(boxes)
    if batch_size is None:
        batch_size = DENSE_BATCH.get(dev.type, 256)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    mode = compile
    if mode == "auto":
        big = m * crops_per_image >= COMPILE_MIN_CROPS
        mode = "default" if dev.type == "cuda" and big else "off"
    per_batch = max(1, batch_size // crops_per_image)  # images per forward pass
    per_pass = min(crops_per_image, batch_size) if per_batch == 1 else per_batch * crops_per_image
    # float32 crops as cut (<= H x W each) and resized (H x W each), the input batch
    pass_bytes = 4 * (2 * per_pass * c * h * w + per_batch * c * h * w)
    what = f"labelling {m:,} images ({crops_per_image:,} crops each)"
    if codec is not None:
        from ladd.codecs import EncodedDense, parse_codec

        codec = parse_codec(codec)
    limits.check_crop_bytes(pass_bytes + 4 * m * crops_per_image, what)  # K >= 1 classes
    home = images.device  # where the labels go back to
    was_training = labeler_model.training
    labeler_model.eval()

    def forward(crops: torch.Tensor) -> torch.Tensor:  # (b*k, C, H, W) -> (b*k, K) fp32
        with torch.autocast(crops.device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = labeler_model(crops)
        return torch.softmax(logits.float() / temperature, dim=1)

    run = forward
    if mode != "off" and crops_per_image <= batch_size:
        run = compile_fn(forward, mode)
    out: torch.Tensor | None = None  # (M, n*n, K) on the device, allocated once K is known
    parts: list[Any] = []  # with a codec: each batch's EncodedDense, on the CPU

    def store(i0: int, j0: int, probs: torch.Tensor, b: int) -> None:
        nonlocal out
        k = probs.shape[0] // b
        if codec is not None and k == crops_per_image:  # whole images: encode them now
            if not parts:
                need = codec.bytes_per_crop(probs.shape[1]) * m * crops_per_image
                limits.check_crop_bytes(pass_bytes + need, what)
            parts.append(EncodedDense.encode(codec, probs.reshape(b, k, -1)).to(home))
            return
        if out is None:
            classes = probs.shape[1]
            rows = m if codec is None else 1  # a codec keeps one image's slices at a time
            limits.check_crop_bytes(pass_bytes + 4 * rows * crops_per_image * classes, what)
            out = torch.empty(rows, crops_per_image, classes, dtype=torch.float32, device=dev)
        row = i0 if codec is None else 0
        out[row : row + b, j0 : j0 + k] = probs.reshape(b, k, -1)

    try:
        if crops_per_image <= batch_size:
            for i in range(0, m, per_batch):
                x = images[i : i + per_batch].to(dev, torch.float32)  # (b, C, H, W)
                b = x.shape[0]
                if run is not forward and b < per_batch:  # one static shape when compiled
                    x = torch.cat([x, x.new_zeros(per_batch - b, *x.shape[1:])])
                crops = sub_sample(x, n, r, limits=limits) if boxes is None else cut_boxes(x, boxes)
                store(i, 0, run(crops.flatten(0, 1))[: b * crops_per_image], b)  # (b', J, ...)
        else:  # a large grid: slices of one image's crops, never all n*n at once
            for i in range(m):
                x = images[i : i + 1].to(dev, torch.float32)  # (1, C, H, W)
                for j in range(0, crops_per_image, batch_size):
                    stop = min(crops_per_image, j + batch_size)
                    crops = (  # (1, stop-j, C, H, W)
                        sub_sample_range(x, n, r, j, stop, limits=limits)
                        if boxes is None
                        else cut_boxes(x, boxes[j:stop])
                    )
                    store(i, j, forward(crops.flatten(0, 1)), 1)
                if codec is not None:
                    assert out is not None
                    parts.append(EncodedDense.encode(codec, out).to(home))
    finally:
        labeler_model.train(was_training)
    if codec is not None:
        return EncodedDense.concat(parts)
    assert out is not None
    return out.to(home)  # (M, n*n, K), one transfer at the end (none when on one device)


def _joined_over_ranks(part: Any) -> Any:
    """Every rank's share (a tensor, or an EncodedDense of payload tensors) joined in rank
    order, on every rank (torch.distributed.all_gather_object of CPU tensors)."""
    import torch.distributed as dist

    from ladd.codecs import EncodedDense

    encoded = isinstance(part, EncodedDense)
    mine = {k: v.cpu() for k, v in part.payload.items()} if encoded else part.cpu()
    shares: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(shares, mine)
    if not encoded:
        return torch.cat(shares)
    joined = {k: torch.cat([p[k] for p in shares]) for k in shares[0]}
    return EncodedDense(part.codec, joined, part.num_classes)


@torch.no_grad()
def full_image_soft_labels(
    images: torch.Tensor,
    labeler_model: nn.Module,
    *,
    batch_size: int = 256,
    temperature: float = 1.0,
) -> torch.Tensor:
    """softmax(g(x_i) / T) on the full images: [M, K] float32 (CPU)."""
    dev = next(labeler_model.parameters()).device
    labeler_model.eval()
    out = [
        torch.softmax(
            labeler_model(images[i : i + batch_size].to(dev)).float() / temperature, 1
        ).cpu()
        for i in range(0, images.shape[0], batch_size)
    ]
    return torch.cat(out)


def check_input_space(dataset: Any, meta: Any, *, atol: float = 2e-3) -> list[str]:
    """Differences between a distilled set's input space and a labeler's (empty when they match).

    Compares ZCA flags, mean/std (the statistics the set is tested with, where its source code
    tests with others than its own), image size, channels and the number of classes.
    """
    problems: list[str] = []
    ds_zca, lab_zca = has_zca(dataset), has_zca(meta)
    if ds_zca != lab_zca:
        problems.append(
            f"the set is {'in' if ds_zca else 'not in'} ZCA space but the labeler was trained "
            f"{'in' if lab_zca else 'without'} ZCA"
        )
    # The set's tensors live in the space its evaluation reads the test split in: its own
    # mean/std, or the test statistics its source code tests with where those differ (GLaD's
    # ImageNet subsets, RDED: DistilledSet.test_mean/test_std, ladd.deploy.eval_inputs).
    tested = getattr(dataset, "test_mean", None) is not None
    for name in ("mean", "std"):
        a = getattr(dataset, f"test_{name}" if tested else name, None)
        b = getattr(meta, name, None)
        if a is None or b is None:
            continue
        a, b = [float(v) for v in a], [float(v) for v in b]
        if len(a) != len(b) or any(abs(x - y) > atol for x, y in zip(a, b, strict=False)):
            what = "set (tested with)" if tested else "set"
            problems.append(f"normalisation {name} differs: {what} {_fmt(a)} vs labeler {_fmt(b)}")
    size = int(dataset.image_size)
    if size != int(meta.image_size):
        problems.append(f"image size differs: set {size} px vs labeler {meta.image_size} px")
    k_set = len(dataset.class_names) if dataset.class_names else int(dataset.labels.max()) + 1
    if k_set != meta.num_classes:
        problems.append(f"number of classes differs: set {k_set} vs labeler {meta.num_classes}")
    return problems


def _fmt(v: Any) -> str:
    return "(" + ", ".join(f"{x:.4f}" for x in v) + ")"


def augment(
    distilled: Any,
    labeler: Any,
    n: int = 5,
    r: float = 0.625,
    *,
    temperature: float = 1.0,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    allow_mismatch: bool = False,
    codec: Any = DEFAULT_CODEC,
    compile: str = "off",
    limits: Limits | None = None,
    sampler: Any = None,
) -> LabelAugmentedSet:
    """Label-augment a DistilledSet with a Labeler (or a labeler checkpoint path).

    `sampler`: crops other than the N x R grid (a ladd.samplers spec such as
    "multiscale:3@0.75,4@0.5" or "random:25,seed=0"); the set records it (n and r are 0).

    `codec`: hold the dense labels in this codec (a spec such as "topk:5,uint8"), encoded batch
    by batch as they are made; default ladd.codecs.DEFAULT_CODEC, what `ladd augment` writes;
    None or "float32": a float32 tensor. `compile` and `limits`: as generate_dense_labels.
    Raises ValueError when the labeler's input space differs from the set's (normalisation, ZCA,
    size, classes) unless `allow_mismatch`.
    """
    from ladd.labeler import Labeler, load_labeler

    if hasattr(distilled, "require_trainable"):
        distilled.require_trainable()  # a set read for description only has no input space
    dev = resolve_device(device)
    if not isinstance(labeler, Labeler):
        labeler = load_labeler(labeler, device=dev)
    model = labeler.model.to(dev).eval()
    problems = check_input_space(distilled, labeler.meta)
    if problems and not allow_mismatch:
        raise ValueError(
            "the labeler does not see the distilled set's input space: "
            + "; ".join(problems)
            + " (this silently ruins dense labels; pass allow_mismatch to force it)"
        )
    check_grid(n, r, limits=limits)
    from ladd.samplers import parse_sampler

    crop_sampler = parse_sampler(sampler) if sampler is not None else None
    if crop_sampler is not None and crop_sampler.grid is not None:
        (n, r), crop_sampler = crop_sampler.grid, None  # the grid: recorded as n and r
    if crop_sampler is None:
        check_grid(n, r, limits=limits)
    t0 = time.perf_counter()
    images = distilled.images.float()
    from ladd.codecs import parse_codec
    from ladd.device import ranks

    target = parse_codec(codec) if codec is not None else None
    if target is not None and target.name in ("float32", "float16"):
        target = None  # float labels are made as float32 (float16 is a cast at save time)
    # In a torchrun job each rank labels its contiguous share of the images; the shares are
    # joined in rank order on every rank (the labels are per image: no rank needs another's).
    mine = ranks().shard(int(images.shape[0]))
    made = generate_dense_labels(
        images[mine],
        model,
        n,
        r,
        batch_size=batch_size,
        temperature=temperature,
        device=dev,
        codec=target,
        compile=compile,
        limits=limits,
        sampler=crop_sampler,
    )
    full_soft = full_image_soft_labels(
        images[mine], model, batch_size=batch_size or 256, temperature=temperature
    )
    if ranks().world > 1:
        made, full_soft = _joined_over_ranks(made), _joined_over_ranks(full_soft)
    dense, encoded = (None, made) if target is not None else (made, None)
    seconds = time.perf_counter() - t0
    # Label generation is the N x N crop forwards per image (Algorithm 1); the full-image soft
    # labels kept for the full_soft ablations are not part of LADD's cost.
    per_image = crop_sampler.num_crops if crop_sampler is not None else n * n
    flops = inference_flops_per_sample(model, images[:1].to(dev)) * images.shape[0] * per_image
    meta = labeler.meta
    class_names = tuple(distilled.class_names or meta.class_names)
    la = LabelAugmentedSet(
        images=images.cpu(),
        labels=distilled.labels.cpu().long(),
        dense=dense,
        encoded=encoded,
        n=n if crop_sampler is None else 0,
        r=float(r) if crop_sampler is None else 0.0,
        sampler=crop_sampler.spec if crop_sampler is not None else None,
        class_names=class_names,
        mean=tuple(float(v) for v in distilled.mean),
        std=tuple(float(v) for v in distilled.std),
        source=getattr(distilled, "source", None) or meta.source,
        zca=getattr(distilled, "zca", None),
        zca_source=getattr(distilled, "zca_source", None),
        soft_labels=None if distilled.soft_labels is None else distilled.soft_labels.float().cpu(),
        full_soft=full_soft,
        lr=None if distilled.lr is None else float(distilled.lr),
        labeler={
            "arch": meta.arch,
            "source": meta.source,
            "epoch": meta.epoch,
            "test_accuracy": meta.test_accuracy,
            "seed": meta.seed,
            "path": str(labeler.path) if labeler.path else None,
            "train_flops": meta.train_flops,
            "generation_seconds": seconds,
            "mismatch": problems,
        },
        temperature=float(temperature),
        distilled_format=getattr(distilled, "format", None),
        generation_flops=float(flops),
        test_mean=getattr(distilled, "test_mean", None),
        test_std=getattr(distilled, "test_std", None),
        test_normalisation=getattr(distilled, "test_normalisation", None),
    )
    return la.with_codec(codec) if codec is not None else la  # float16: a cast


# ---------------------------------------------------------------------------------------------
# Storage overhead (paper section 4: zip of uint8 images + float32 labels; a LADD file also
# stores the full images' soft labels, counted unless asked not to)


def _zip_size(blobs: dict[str, bytes]) -> int:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in blobs.items():
            zf.writestr(name, data)
    return len(buf.getvalue())


def _baseline_blobs(images_uint8: torch.Tensor, hard_labels: torch.Tensor) -> dict[str, bytes]:
    return {
        "images.bin": images_uint8.detach().cpu().to(torch.uint8).contiguous().numpy().tobytes(),
        "labels.bin": hard_labels.detach().cpu().to(torch.float32).contiguous().numpy().tobytes(),
    }


@dataclass(frozen=True)
class OverheadReport:
    """Zip-compressed bytes of a set without and with its labels: `with_dense_bytes` holds
    every label the file stores beside the images (the dense labels, and the full images' soft
    labels when counted); `dense_only_bytes` the dense labels alone (the paper's measurement),
    equal to `with_dense_bytes` when nothing else was counted."""

    base_bytes: int
    with_dense_bytes: int
    dense_only_bytes: int | None = None

    @property
    def overhead(self) -> float:
        return (self.with_dense_bytes - self.base_bytes) / self.base_bytes

    @property
    def dense_only_overhead(self) -> float:
        """The paper's figure: the dense labels alone over the images and hard labels."""
        only = self.with_dense_bytes if self.dense_only_bytes is None else self.dense_only_bytes
        return (only - self.base_bytes) / self.base_bytes


def _label_blobs(dense_labels: Any, name: str = "dense") -> dict[str, bytes]:
    """Labels' bytes as a file stores them: a tensor as float32 (the paper's measurement), an
    EncodedDense (ladd.codecs) as its payload tensors' raw bytes."""
    if isinstance(dense_labels, torch.Tensor):
        return {f"{name}.bin": dense_labels.detach().cpu().float().contiguous().numpy().tobytes()}
    payload = dense_labels.payload
    raw = {
        k: t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()
        for k, t in payload.items()
    }
    if len(raw) == 1:
        return {f"{name}.bin": next(iter(raw.values()))}
    return {f"{name}.{k}.bin": b for k, b in raw.items()}


def storage_report(
    images_uint8: torch.Tensor,
    dense_labels: Any,
    hard_labels: torch.Tensor | None = None,
    full_soft: Any = None,
) -> OverheadReport:
    """Measure the zip sizes (see `storage_overhead`). `dense_labels`: probabilities
    (M, N*N, K), measured as float32, or a ladd.codecs.EncodedDense, measured as stored.
    `full_soft`: the full images' soft labels the file stores beside them (a float (M, K)
    tensor, measured as float32, or an EncodedDense with leading dims (M, 1)), counted in
    `with_dense_bytes`; None: the dense labels alone (the paper's measurement)."""
    if images_uint8.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 pixels, got {images_uint8.dtype}")
    if hard_labels is None:
        probs = dense_labels if isinstance(dense_labels, torch.Tensor) else dense_labels.decode()
        hard_labels = probs.float().mean(1).argmax(-1)
    base = _baseline_blobs(images_uint8, hard_labels)
    dense = {**base, **_label_blobs(dense_labels)}
    only = _zip_size(dense)
    if full_soft is None:
        return OverheadReport(_zip_size(base), only, only)
    every = _zip_size({**dense, **_label_blobs(full_soft, "full_soft")})
    return OverheadReport(_zip_size(base), every, only)


def storage_overhead(
    images_uint8: torch.Tensor, dense_labels: torch.Tensor, hard_labels: torch.Tensor | None = None
) -> float:
    """LADD's storage overhead as a fraction, the way the paper measures it.

    Baseline: one ZIP_DEFLATED archive of the uint8 images (M, C, H, W) and the hard labels as
    float32 class indices, one scalar per image (default: the argmax of the mean dense label).
    With dense labels: the same archive plus the dense labels as float32 (M, N*N, K).
    Returns (with - without) / without; e.g. ~0.025 for a 10-class, IPC-10, 128 px set, N = 5.
    """
    return storage_report(images_uint8, dense_labels, hard_labels).overhead


def set_uint8_images(la: Any) -> torch.Tensor:
    """A set's images as uint8 pixels: denormalised, or min-max scaled per image for ZCA-space
    images without an inverse and for a set read with an unknown normalisation (describe_only).
    """
    if has_zca(la) and hasattr(la.zca, "invert") and la.mean is not None:
        from ladd.data.imageset import to_uint8

        return to_uint8(la.zca.invert(la.images.float()), la.mean, la.std)
    if has_zca(la) or getattr(la, "mean", None) is None or getattr(la, "std", None) is None:
        x = la.images.float()
        lo, hi = x.amin(dim=(1, 2, 3), keepdim=True), x.amax(dim=(1, 2, 3), keepdim=True)
        return ((x - lo) / (hi - lo).clamp_min(1e-12) * 255).round().to(torch.uint8)
    from ladd.data.imageset import to_uint8

    return to_uint8(la.images.float(), la.mean, la.std)


def set_base_bytes(ds: Any) -> int:
    """Zip-compressed bytes of a set's images and hard labels alone (the baseline of
    `storage_overhead`): a distilled set needs no dense labels to be measured."""
    return _zip_size(_baseline_blobs(set_uint8_images(ds), ds.labels))


def set_storage_report(
    la: LabelAugmentedSet, codec: Any = None, *, full_soft: bool = True
) -> OverheadReport:
    """The storage overhead report of a label-augmented set, its labels measured in the codec
    they are held in, or in `codec` (a spec such as "topk:5,uint8"), as the file stores them:
    the dense labels and, with `full_soft` (default), the full images' soft labels the file
    keeps for the full_soft ablations (in the dense labels' codec, or float32 beside float
    dense labels). `dense_only_overhead` is the paper's measurement (section 4: the dense
    labels alone, float32 for the float32 codec); `full_soft=False` measures only that."""
    held = la.with_codec(codec) if codec is not None else la
    extra = held.full_soft_as_stored() if full_soft else None
    return storage_report(set_uint8_images(la), held.dense_labels(), la.labels, extra)


@dataclass(frozen=True)
class CodecBytes:
    """One codec's storage figures for a set: the zip overhead of the labels the file stores
    (dense and full-image), the paper's (section 4: the dense labels alone), the raw bytes of
    the dense labels per image, and the codec's stated error on a probability."""

    codec: str
    overhead: float
    base_bytes: int  # zip of the images and hard labels alone
    zip_bytes: int  # with every label the file stores
    label_bytes_per_image: float  # the dense labels, raw
    max_abs_error: float
    dense_only_overhead: float  # the paper's measurement


def codec_table(la: LabelAugmentedSet, codecs: Any = None) -> list[CodecBytes]:
    """Storage of a label-augmented set's labels in each codec (default: every standard one,
    ladd.codecs.STANDARD_SPECS), measured on its own labels as the file would store them."""
    from ladd.codecs import STANDARD_SPECS, parse_codec

    rows = []
    base = set_uint8_images(la)
    for spec in codecs or STANDARD_SPECS:
        codec = parse_codec(spec)
        held = la.with_codec(codec)
        rep = storage_report(base, held.dense_labels(), la.labels, held.full_soft_as_stored())
        rows.append(
            CodecBytes(
                codec.spec,
                rep.overhead,
                rep.base_bytes,
                rep.with_dense_bytes,
                held.label_bytes() / max(1, len(la)),
                codec.max_abs_error(la.num_classes),
                rep.dense_only_overhead,
            )
        )
    return rows
