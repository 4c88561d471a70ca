"""The label-augmented set D_LA = {(x_i, y_i, y^d_i)} and its file.

A label-augmented set is one safetensors file: tensors `images` (float32 normalised, [M,C,H,W];
or uint8 pixels when the metadata says `"pixels": "uint8"`: written so when the normalised
images are exactly those of 8-bit pixels, a quarter of the bytes, read back bit for bit),
`labels` (int64 [M]), the dense labels, optional `soft_labels` [M,K] (e.g. DATM's) and
`full_soft` [M,K] (the labeler on the full image, for the full+soft ablation; in the dense
labels' codec as `full_soft.<name>` [M, 1, ...] for a codec other than float32/float16, so that
at 1000 classes it does not outweigh them); metadata key
"ladd_set" holds JSON: n, r, class names, mean, std, test_mean/test_std (where the set's code
tests with other statistics), source, zca ({source, eps, space: "pixels01"}: whitened [0, 1]
pixels, mean 0 / std 1, as MTT/DATM), lr, the labeler's identity and epoch, temperature, and
`codec` ({name, params}: ladd.codecs). The dense labels are the tensor `dense` ([M, N*N, K]
probabilities) for the float32 and float16 codecs, the codec's payload tensors `dense.<name>`
(leading dims [M, N*N]) for the others; a file without `codec` (older LADD) holds `dense` in
float32 or float16. The file is recognised by the "ladd_set" metadata key, whatever its name.

Loading checks everything a hostile or careless file could get wrong (shapes, dtypes, NaN/Inf in
any tensor, metadata types) and reports it as one LabelAugmentedFileError line.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import torch
from safetensors import safe_open

from ladd.codecs import Codec, CodecError, EncodedDense, parse_codec
from ladd.data.imageset import exact_pixels
from ladd.data.zca import ZCA_SPACE
from ladd.files import save_tensors
from ladd.sets.augmented_checks import (
    LabelAugmentedFileError,
    meta_codec,
    meta_int,
    meta_map,
    meta_names,
    meta_number,
    meta_numbers,
    meta_text,
    validate_set,
)
from ladd.sets.base import (
    DistilledFileError,
    DistilledReader,
    DistilledSet,
    ReadRequest,
    has_zca,
    read_safetensors_header,
    register_reader,
)
from ladd.sets.loading import fit_zca_for

SET_FORMAT = "ladd.label_augmented/1"
META_KEY = "ladd_set"
DENSE_PREFIX = "dense."  # payload tensors of a codec other than float32/float16
FULL_SOFT_PREFIX = "full_soft."  # the full images' soft labels in such a codec


FLOAT_FILE_CODECS = ("float32", "float16")  # written as the one tensor `dense` (older readers)


@dataclass
class LabelAugmentedSet:
    """A distilled set plus dense labels: D_LA = {(x_i, y_i, y^d_i)}.

    One rule for its spelling: properties are what the set holds, read without decoding
    (`codec`, `num_classes`, `num_crops`, `image_size`, `ipc`); methods compute (`probs()`
    decodes every crop's label, (M, N*N, K) float32, which for ImageNet-1K in a compact codec
    is gigabytes; `image_probs(i)`, `dense_labels()`, `label_bytes()`, `with_codec()`).
    `ladd.LabelAugmentedDataset.from_set(la)` serves the labels to a DataLoader a crop at a time.
    """

    images: torch.Tensor  # float32 normalised (M, C, H, W)
    labels: torch.Tensor  # int64 (M,)
    dense: torch.Tensor | None  # probabilities (M, n*n, K) float32/16; None: held in `encoded`
    n: int
    r: float
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str | None = None
    zca: Any = None  # a fitted ladd.data.ZCA when the images are in ZCA space
    soft_labels: torch.Tensor | None = None  # the distilled set's own soft labels (M, K), if any
    full_soft: torch.Tensor | None = None  # labeler's softmax on the full images (M, K)
    lr: float | None = None  # the distilled set's learned lr (DATM), if any
    labeler: dict[str, Any] = field(default_factory=dict)  # arch, source, epoch, path, accuracy
    temperature: float = 1.0
    distilled_format: str | None = None
    generation_flops: float = 0.0
    format: str = SET_FORMAT
    zca_source: str | None = None  # the ZCA's source when it is not `source`, or not fitted
    # The statistics the set's own code tests with, where they differ from mean/std (GLaD's
    # ImageNet subsets, RDED: ladd.sets.base.DistilledSet.test_mean; ladd.deploy.eval_inputs).
    test_mean: tuple[float, ...] | None = None
    test_std: tuple[float, ...] | None = None
    test_normalisation: str | None = None
    # The dense labels in another codec (topk, int8, bfloat16), decoded only where asked;
    # exactly one of `dense` and `encoded` holds them.
    encoded: EncodedDense | None = None
    # The crops' sampler when it is not the N x R grid (a ladd.samplers spec, e.g.
    # "multiscale:3@0.75,4@0.5"); then n and r are 0. None: the grid of n and r.
    sampler: str | None = None

    # -- the crops -----------------------------------------------------------------------------
    def crop_sampler(self) -> Any:
        """The ladd.samplers Sampler whose crops the dense labels label."""
        from ladd.samplers import grid_sampler, parse_sampler

        return parse_sampler(self.sampler) if self.sampler else grid_sampler(self.n, self.r)

    # -- the dense labels ----------------------------------------------------------------------
    @property
    def codec(self) -> Codec:
        """The codec the dense labels are held (and by default written) in."""
        if self.encoded is not None:
            return self.encoded.codec
        return parse_codec("float16" if self.dense.dtype == torch.float16 else "float32")

    def dense_labels(self) -> EncodedDense:
        """The dense labels as stored (an EncodedDense; float ones wrap `dense` as it is)."""
        if self.encoded is not None:
            return self.encoded
        return EncodedDense(self.codec, {"probs": self.dense}, int(self.dense.shape[-1]))

    def probs(self) -> torch.Tensor:
        """Every crop's label decoded: float32 (M, n*n, K). A large set in a compact codec is
        better read a chunk at a time (dense_labels().chunks()) or per image (image_probs)."""
        if self.dense is not None:
            return self.dense.float()
        return self.encoded.decode()

    def image_probs(self, index: int) -> torch.Tensor:
        """One image's crop labels decoded: float32 (n*n, K)."""
        if self.dense is not None:
            return self.dense[index].float()
        return self.encoded.decode(index, index + 1)[0]

    def label_bytes(self) -> int:
        """Raw bytes of the dense labels as the file stores them."""
        return self.dense_labels().nbytes()

    def full_soft_as_stored(self) -> torch.Tensor | EncodedDense | None:
        """The full images' soft labels as the file stores them: float32 (M, K) beside float32
        or float16 dense labels, else in the dense labels' codec (leading dims (M, 1)), so that
        at 1000 classes they do not outweigh compact dense labels; None when there are none."""
        if self.full_soft is None:
            return None
        if self.codec.name in FLOAT_FILE_CODECS:
            return self.full_soft.float()
        return EncodedDense.encode(self.codec, self.full_soft.float().unsqueeze(1))  # (M, 1, K)

    def with_codec(self, codec: str | Codec) -> LabelAugmentedSet:
        """This set with its dense labels in `codec` (a spec such as "topk:5,uint8"); the same
        set when it already is. Encoded a chunk of images at a time."""
        from dataclasses import replace

        target = parse_codec(codec)
        if target.spec == self.codec.spec:
            return self
        if target.name in FLOAT_FILE_CODECS:
            dtype = torch.float16 if target.name == "float16" else torch.float32
            return replace(self, dense=self.probs().to(dtype), encoded=None)
        parts = [EncodedDense.encode(target, p) for _, p in self.dense_labels().chunks()]
        return replace(self, dense=None, encoded=EncodedDense.concat(parts))

    # -- shape facts ---------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        if self.dense is None:
            return int(self.encoded.num_classes) if self.encoded is not None else 0
        return int(self.dense.shape[-1])

    @property
    def num_crops(self) -> int:
        return self.crop_sampler().num_crops if self.sampler else self.n * self.n

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def ipc_per_class(self) -> list[int]:
        return torch.bincount(self.labels.cpu(), minlength=self.num_classes).tolist()

    @property
    def ipc(self) -> int:
        """Images per class (the largest class when unbalanced)."""
        return max(self.ipc_per_class())

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def trainable(self) -> bool:
        """False when loaded with describe_only and its ZCA was not fitted."""
        return not (self.zca_source is not None and not has_zca(self))

    def require_trainable(self) -> None:
        if not self.trainable:
            raise LabelAugmentedFileError(
                f"its ZCA ({self.zca_source}) was not fitted: it was loaded for description only"
            )

    def validate(self) -> None:
        """Raise LabelAugmentedFileError on any inconsistency."""
        validate_set(self)

    def to_distilled(self) -> Any:
        """The underlying distilled set (dense labels dropped)."""
        zca_source = self.zca_source or (self.source if has_zca(self) else None)
        return DistilledSet(
            images=self.images,
            labels=self.labels,
            soft_labels=self.soft_labels,
            lr=self.lr,
            mean=tuple(self.mean),
            std=tuple(self.std),
            class_names=tuple(self.class_names),
            format=self.distilled_format or "ladd",
            source=self.source,
            zca=self.zca,
            zca_source=zca_source,
            normalisation="recorded in the label-augmented file",
            test_mean=self.test_mean,
            test_std=self.test_std,
            test_normalisation=self.test_normalisation,
        )

    def describe(self) -> dict[str, Any]:
        """A summary for `ladd info` and the dashboard."""
        lo, hi = float(self.images.min()), float(self.images.max())
        zca = has_zca(self) or self.zca_source is not None
        return {
            "format": "label-augmented (LADD)",
            "images": len(self),
            "classes": self.num_classes,
            "class_names": list(self.class_names),
            "ipc_per_class": self.ipc_per_class(),
            "image_size": self.image_size,
            "label_kind": "hard + dense" + (" + soft" if self.soft_labels is not None else ""),
            "value_range": [lo, hi],
            "n": self.n,
            "r": self.r,
            "sampler": self.crop_sampler().spec,
            "dense_shape": list(self.dense_labels().shape),
            "dense_dtype": "float32" if self.dense is None else str(self.dense.dtype)[6:],
            "codec": self.codec.spec,
            "label_bytes": self.label_bytes(),
            "label_bytes_per_image": self.label_bytes() / max(1, len(self)),
            "labeler": self.labeler,
            "source": self.source,
            "normalisation": {"mean": list(self.mean), "std": list(self.std), "zca": zca},
            "test_normalisation": None
            if self.test_mean is None
            else {
                "mean": list(self.test_mean),
                "std": list(self.test_std or ()),
                "what": self.test_normalisation,
            },
            "lr": self.lr,
        }

    # -- file ----------------------------------------------------------------------------------
    def save(self, path: str | Path, *, codec: str | Codec | None = None) -> Path:
        """Write one safetensors file (atomically), the dense labels in `codec` (a spec, e.g.
        "topk:5,uint8"; default: the codec the set holds them in)."""
        la = self.with_codec(codec) if codec is not None else self
        la.validate()
        la.require_trainable()
        return la._write(Path(path))

    def _write(self, path: Path) -> Path:
        pixels = None if has_zca(self) else exact_pixels(self.images, self.mean, self.std)
        images = pixels if pixels is not None else self.images.float()
        tensors = {"images": images, "labels": self.labels.long()}
        if self.dense is not None:
            tensors["dense"] = self.dense.contiguous()
        else:
            for key, t in self.encoded.payload.items():
                tensors[f"{DENSE_PREFIX}{key}"] = t.contiguous()
        if self.soft_labels is not None:
            tensors["soft_labels"] = self.soft_labels.float()
        full = self.full_soft_as_stored()
        if isinstance(full, torch.Tensor):
            tensors["full_soft"] = full
        elif full is not None:
            for key, t in full.payload.items():
                tensors[f"{FULL_SOFT_PREFIX}{key}"] = t.contiguous()
        zca = None
        if has_zca(self):
            zca = {
                "source": self.zca_source or self.source,
                "eps": float(self.zca.eps),
                "space": ZCA_SPACE,
            }
        meta = {
            "format": self.format,
            "n": self.n,
            "r": self.r,
            "class_names": list(self.class_names),
            "mean": list(self.mean),
            "std": list(self.std),
            "source": self.source,
            "zca": zca,
            "lr": self.lr,
            "labeler": self.labeler,
            "temperature": self.temperature,
            "distilled_format": self.distilled_format,
            "generation_flops": self.generation_flops,
            "codec": {"name": self.codec.name, "params": self.codec.params},
            "pixels": "uint8" if pixels is not None else "float32",
        }
        if self.sampler:
            meta["sampler"] = self.crop_sampler().spec
        if self.test_mean is not None:
            meta["test_mean"], meta["test_std"] = list(self.test_mean), list(self.test_std or ())
            meta["test_normalisation"] = self.test_normalisation
        return save_tensors(path, tensors, {META_KEY: json.dumps(meta), "format": SET_FORMAT})

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        data_root: str | Path | None = None,
        cache_dir: str | Path | None = None,
        describe_only: bool = False,
    ) -> LabelAugmentedSet:
        """Read and validate a label-augmented set file (LabelAugmentedFileError when bad).

        A set in ZCA space gets its whitening re-fitted on the source's train split (cached),
        unless `describe_only` (then it is named in `zca_source` but not fitted).
        """
        return _named(cls, Path(path), data_root, cache_dir, describe_only, head=False)

    @classmethod
    def load_head(
        cls,
        path: str | Path,
        *,
        data_root: str | Path | None = None,
        cache_dir: str | Path | None = None,
        describe_only: bool = False,
    ) -> LabelAugmentedSet | None:
        """The file's set checked as `load` checks it, but with its first image alone as
        `images` (labels, dense labels and the rest whole); None when its images are not
        uint8 pixels (float or ZCA-space images: `load` it). The other images: read_images."""
        return _named(cls, Path(path), data_root, cache_dir, describe_only, head=True)


def _named(cls: type[LabelAugmentedSet], path: Path, *args: Any, head: bool) -> Any:
    """_load with every LabelAugmentedFileError's message starting with the file's path."""
    try:
        return _load(cls, path, *args, head=head)
    except LabelAugmentedFileError as err:
        text = str(err)
        if text.startswith(f"{path}: "):
            raise
        raise LabelAugmentedFileError(f"{path}: {text}") from None


def read_images(path: str | Path, indices: list[int], head: LabelAugmentedSet) -> torch.Tensor:
    """Images `indices` of a label-augmented file whose `head` (load_head) is read: the file's
    uint8 rows normalised, what `load` gives for them, bit for bit."""
    from ladd.data.imageset import normalise

    with safe_open(str(path), framework="pt") as f:
        rows = f.get_slice("images")
        picked = torch.cat([rows[i : i + 1] for i in indices])
    return normalise(picked, head.mean, head.std)


def _load(
    cls: type[LabelAugmentedSet],
    path: Path,
    data_root: str | Path | None,
    cache_dir: str | Path | None,
    describe_only: bool,
    head: bool = False,
) -> LabelAugmentedSet | None:
    """LabelAugmentedSet.load; with `head`, load_head (None for float or ZCA-space images)."""
    err = LabelAugmentedFileError
    if not path.is_file():
        raise err("no such file")
    try:
        header = read_safetensors_header(path)
    except DistilledFileError as e:
        raise err(f"not a readable safetensors file ({e.problem})") from None
    if header is None:
        raise err("not a readable safetensors file (no safetensors header)")
    if header.truncated:
        raise err(
            f"truncated: the header promises {header.data_needed} bytes of tensor data, the "
            f"file holds {header.data_present}"
        )
    if META_KEY not in header.metadata:
        raise err(f"not a label-augmented set (no '{META_KEY}' metadata)")
    try:
        meta = json.loads(header.metadata[META_KEY])
    except (json.JSONDecodeError, RecursionError) as e:
        raise err(f"corrupt metadata ({e})") from None
    if not isinstance(meta, dict):
        raise err("corrupt metadata (not a JSON object)")
    entry = header.tensors.get("images", {})
    shape = entry.get("shape")
    count = shape[0] if isinstance(shape, list) and shape and type(shape[0]) is int else 0
    if head and (entry.get("dtype") != "U8" or meta.get("zca") or count < 1):
        return None  # float or ZCA-space images, or none: `load` reads (or refuses) them
    try:
        with safe_open(str(path), framework="pt") as f:
            keys = [k for k in f.keys() if not (head and k == "images")]  # noqa: SIM118
            tensors = {k: f.get_tensor(k) for k in keys}
            if head:
                tensors["images"] = f.get_slice("images")[0:1]
    except Exception as e:  # the library may fail in any way on a hostile file
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise err(f"not a readable safetensors file ({first[:160]})") from None
    codec = meta_codec(meta)
    float_file = codec is None or codec.name in FLOAT_FILE_CODECS
    missing = [k for k in ("images", "labels") if k not in tensors]
    if float_file and "dense" not in tensors:
        missing.append("dense")
    missing += [k for k in ("n", "r", "class_names", "mean", "std") if k not in meta]
    if missing:
        raise err(f"missing {', '.join(missing)}")
    encoded = None
    if not float_file:
        payload = {
            k[len(DENSE_PREFIX) :]: v for k, v in tensors.items() if k.startswith(DENSE_PREFIX)
        }
        encoded = EncodedDense(codec, payload, len(meta_names(meta)))
    elif codec is not None and tensors["dense"].dtype != codec.layout(1)["probs"].dtypes[0]:
        raise err(
            f"the file says codec {codec.spec} but its dense labels are {tensors['dense'].dtype}"
        )
    zinfo = meta.get("zca")
    images = tensors["images"]
    if images.dtype == torch.uint8:
        if meta.get("pixels") != "uint8":
            raise err("its images are uint8 but the metadata does not say pixels: uint8")
        if zinfo:
            raise err("uint8 pixels cannot be ZCA-space images")
        if images.dim() != 4 or images.shape[1] != len(meta["mean"]):
            raise err(f"images must be (M, C, H, W) with C = {len(meta['mean'])}")
        from ladd.data.imageset import normalise

        images = normalise(images, meta_numbers(meta, "mean"), meta_numbers(meta, "std"))
        if head:  # the first image standing in for all: the checks read its shape
            images = images.expand(count, -1, -1, -1)
    full_soft = tensors.get("full_soft")
    coded_full = {
        k[len(FULL_SOFT_PREFIX) :]: v for k, v in tensors.items() if k.startswith(FULL_SOFT_PREFIX)
    }
    if coded_full:
        if float_file or full_soft is not None:
            raise err("full_soft is written twice, or in a codec the file's dense labels are not")
        try:
            full_soft = codec.decode(coded_full, len(meta_names(meta)))[:, 0]
        except (CodecError, RuntimeError, IndexError, ValueError) as e:
            raise err(f"full_soft: {e}") from None
    la = cls(
        images=images,
        labels=tensors["labels"],
        dense=tensors["dense"] if float_file else None,
        encoded=encoded,
        n=meta_int(meta, "n"),
        r=meta_number(meta, "r"),
        class_names=meta_names(meta),
        mean=meta_numbers(meta, "mean"),
        std=meta_numbers(meta, "std"),
        source=meta_text(meta, "source"),
        zca=None,
        soft_labels=tensors.get("soft_labels"),
        full_soft=full_soft,
        lr=None if meta.get("lr") is None else meta_number(meta, "lr"),
        labeler=meta_map(meta, "labeler"),
        temperature=meta_number(meta, "temperature", 1.0),
        distilled_format=meta_text(meta, "distilled_format"),
        generation_flops=meta_number(meta, "generation_flops", 0.0),
        format=meta_text(meta, "format") or SET_FORMAT,
        test_mean=meta_numbers(meta, "test_mean") if meta.get("test_mean") is not None else None,
        test_std=meta_numbers(meta, "test_std") if meta.get("test_mean") is not None else None,
        test_normalisation=meta_text(meta, "test_normalisation"),
        sampler=meta_text(meta, "sampler"),
    )
    validate_set(la)
    la.images = la.images.float() if not head else la.images[:1].contiguous()
    if zinfo:
        if not isinstance(zinfo, dict):
            raise err("metadata field zca is not a map")
        if zinfo.get("space") != ZCA_SPACE:
            raise err(
                "written by an older LADD whose ZCA was fitted on normalised images, not on "
                "[0, 1] pixels as MTT/DATM fit it: label the set again (ladd augment)"
            )
        if (tuple(la.mean), tuple(la.std)) != ((0.0,) * 3, (1.0,) * 3):
            raise err(f"ZCA-space images need mean 0 / std 1, the metadata says {la.mean}/{la.std}")
        zca_source = meta_text(zinfo, "source") or la.source
        if not zca_source:
            raise err("images are in ZCA space of an unrecorded source")
        eps = meta_number(zinfo, "eps", 0.1)
        la.zca_source = zca_source
        if not describe_only:
            try:
                la.zca = fit_zca_for(
                    zca_source,
                    eps=eps,
                    image_size=la.image_size,
                    data_root=data_root,
                    cache_dir=cache_dir,
                )
            except (ValueError, OSError) as e:  # unknown source, no data, size mismatch
                raise err(f"its ZCA could not be fitted on {zca_source} ({e})") from None
            if la.zca.num_features != la.images[0].numel():
                raise err(f"ZCA of {zca_source} does not match {la.image_size} px images")
    return la


def is_label_augmented_file(path: str | Path) -> bool:
    """Whether `path` is a label-augmented set file (by its metadata, not its name); a file
    cut short inside its tensors still counts, so that loading it says "truncated"."""
    p = Path(path)
    if not p.is_file():
        return False
    try:
        header = read_safetensors_header(p)
    except DistilledFileError:  # starts like safetensors but the header is broken
        return False
    return header is not None and META_KEY in header.metadata


def file_codec(path: str | Path) -> str | None:
    """The label codec a label-augmented file stores its dense labels in (its spec), read from
    the header alone; None for any other file or one whose codec record does not parse."""
    p = Path(path)
    try:
        header = read_safetensors_header(p) if p.is_file() else None
    except DistilledFileError:
        return None
    if header is None or META_KEY not in header.metadata:
        return None
    try:
        meta = json.loads(header.metadata[META_KEY])
        codec = meta_codec(meta) if isinstance(meta, dict) else None
    except (json.JSONDecodeError, RecursionError, LabelAugmentedFileError):
        return None
    if codec is not None:
        return codec.spec
    dtype = (header.tensors.get("dense") or {}).get("dtype")
    return "float16" if dtype == "F16" else "float32"


_FOREIGN_OPTIONS = (
    "mean",
    "std",
    "format",
    "zca_source",
    "experiment",
    "class_names",
    "num_classes",
    "image_size",
)


class LabelAugmentedReader(DistilledReader):
    """Label-augmented set files (`ladd augment` output), whatever they are named."""

    format = "ladd_label_augmented"

    def detect(self, path: Path) -> bool:
        return is_label_augmented_file(path)

    def read(self, path: Path, request: ReadRequest) -> Any:
        raise NotImplementedError("label-augmented files are loaded whole (load)")

    def load(
        self,
        path: Path,
        *,
        data_root: str | Path | None = None,
        cache_dir: str | Path | None = None,
        describe_only: bool = False,
        **options: Any,
    ) -> LabelAugmentedSet:
        _check_options(path, options)
        return LabelAugmentedSet.load(
            path, data_root=data_root, cache_dir=cache_dir, describe_only=describe_only
        )

    def load_head(
        self,
        path: Path,
        *,
        data_root: str | Path | None = None,
        cache_dir: str | Path | None = None,
        describe_only: bool = False,
        **options: Any,
    ) -> LabelAugmentedSet | None:
        """`load` with the first image only (LabelAugmentedSet.load_head; ladd.sets.view)."""
        _check_options(path, options)
        return LabelAugmentedSet.load_head(
            path, data_root=data_root, cache_dir=cache_dir, describe_only=describe_only
        )


def _check_options(path: Path, options: dict[str, Any]) -> None:
    """load_set's options that a label-augmented file takes: unknown ones refused, those it
    records itself (normalisation, classes, ZCA) ignored with a warning."""
    given = [k for k in _FOREIGN_OPTIONS if options.get(k) is not None]
    unknown = sorted(set(options) - {*_FOREIGN_OPTIONS, "source"})  # source: its test split
    if unknown:
        raise TypeError(f"unknown set options: {', '.join(unknown)}")
    if given:
        warnings.warn(
            f"{path}: a label-augmented set records its own normalisation, classes and "
            f"ZCA; ignored {', '.join(given)}",
            stacklevel=4,
        )


register_reader(LabelAugmentedReader(), first=True)


# What a training run can train on: a distilled set, or one with its dense labels.
TrainableSet: TypeAlias = DistilledSet | LabelAugmentedSet
