"""Every input cap of LADD in one place: how much a file, folder, archive or setting may cost.

Small hostile or careless inputs can ask for huge memory: a 250 KB PNG that declares 16000 x
16000 pixels, a 1.5 MB zip that expands to gigabytes, a folder whose symlinks loop, `--n 1000`.
Each cap below is checked BEFORE the memory is allocated, and each refusal is one
InputLimitError (a ValueError, so the CLI and the dashboard show it as one line) that names the
cap and the environment variable that raises it.

The defaults are far above what real data sets need (CIFAR-10/100: 60,000 images of 32 px;
an ImageNet subset at 128 px: ~13,000 train images, ~640 MB decoded; the paper's largest grid:
N = 9). Raise one by setting its variable, e.g. `LADD_MAX_DECODED_BYTES=32G`. Values are whole
numbers; byte sizes take a K/M/G/T suffix (powers of 1024).

    variable                     default    what it bounds
    LADD_MAX_IMAGE_PIXELS        100M px    width x height of one image, read from its header
    LADD_MAX_IMAGES              1,000,000  images in one folder, archive or set
    LADD_MAX_DECODED_BYTES       8 GiB      one decoded uint8 image tensor (N x 3 x S x S)
    LADD_MAX_ARCHIVE_ENTRIES     1,000,000  entries in one .zip or .tar
    LADD_MAX_ARCHIVE_RATIO       100        expanded / compressed size of an archive (past 64 MiB)
    LADD_MAX_ARCHIVE_BYTES       4 GiB      bytes read out of one archive (held in memory)
    LADD_MAX_UPLOAD_BYTES        2 GiB      bytes one dashboard upload writes (files + unzipped)
    LADD_MAX_N                   32         crops per side of the sub-sampler (N x N crops)
    LADD_MAX_CROP_BYTES          4 GiB      label-augmentation memory: dense labels + crops
    LADD_MAX_CACHED_SPLIT_BYTES  4 GiB      a split of a streamed source (ImageNet-1K val) held
                                            as one cached uint8 tensor; above it, the split streams
    LADD_MAX_CLASSES             100,000    classes of one set or source, whether a file names
                                            them, a label value or a folder index implies them
    LADD_MAX_SEEDS               1,000      seeds (models trained) of one training run
    LADD_MAX_MODEL_BYTES         4 GiB      parameters + buffers of one model, counted on the
                                            meta device before it is built

A torch file (`.pt`) is a zip: its compressed records fall under the archive caps, and what
its tensors claim under the ratio (ladd.torchfiles). Images are resized within a bounded
buffer whatever their aspect ratio (ladd.data.decode).

(PIL refuses images above ~179M pixels on its own; raising LADD_MAX_IMAGE_PIXELS above that
does not lift PIL's limit for the formats torchvision cannot decode.)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields

KIB = 1024
MIB = 1024**2
GIB = 1024**3

# Archives that expand to less than this are never refused for their compression ratio: a small
# archive of flat synthetic images may compress 1000:1 and is harmless.
RATIO_FLOOR_BYTES = 64 * MIB


class InputLimitError(ValueError):
    """An input over one of the caps of `Limits`; the message names the cap and its variable.

    Examples:
        >>> from ladd import InputLimitError, Limits
        >>> try:
        ...     Limits(max_n=8).check_n(9)
        ... except InputLimitError as err:
        ...     print(str(err)[:40])
        n = 9 crops per side (81 crops per image
    """


@dataclass(frozen=True)
class Limits:
    """Caps on what one input may cost; `current_limits()` reads them from the environment.

    Library functions take `limits=` (None: `current_limits()`, the LADD_MAX_* variables the
    command line and the dashboard are configured with); pass a Limits to lift one cap for one
    call, e.g. dense labels of ImageNet-1K at IPC 50 in float32:

    Examples:
        >>> from ladd import Limits
        >>> from ladd.limits import GIB
        >>> roomy = Limits(max_crop_bytes=64 * GIB)
        >>> roomy.max_crop_bytes // GIB, Limits().max_crop_bytes // GIB
        (64, 4)
    """

    max_image_pixels: int = 100_000_000
    max_images: int = 1_000_000
    max_decoded_bytes: int = 8 * GIB
    max_archive_entries: int = 1_000_000
    max_archive_ratio: int = 100
    max_archive_bytes: int = 4 * GIB
    max_upload_bytes: int = 2 * GIB
    max_n: int = 32
    max_crop_bytes: int = 4 * GIB
    max_cached_split_bytes: int = 4 * GIB
    max_classes: int = 100_000
    max_seeds: int = 1_000
    max_model_bytes: int = 4 * GIB

    # ---- checks (each raises InputLimitError with a one-line message) --------------------
    def check_pixels(self, width: int, height: int, name: str) -> None:
        """Refuse an image whose header declares more pixels than max_image_pixels."""
        pixels = int(width) * int(height)
        if pixels > self.max_image_pixels:
            raise InputLimitError(
                f"{name}: {width} x {height} = {pixels:,} pixels is over the limit of "
                f"{self.max_image_pixels:,} pixels per image{_raise('max_image_pixels')}"
            )

    def check_images(self, count: int, name: str) -> None:
        """Refuse a folder, archive or set of more than max_images images."""
        if count > self.max_images:
            raise InputLimitError(
                f"{name}: more than {self.max_images:,} images{_raise('max_images')}"
            )

    def check_decoded(self, nbytes: int, name: str) -> None:
        """Refuse a decoded image tensor larger than max_decoded_bytes (before allocating it)."""
        if nbytes > self.max_decoded_bytes:
            raise InputLimitError(
                f"{name}: decoding needs {format_bytes(nbytes)}, over the limit of "
                f"{format_bytes(self.max_decoded_bytes)}{_raise('max_decoded_bytes')}"
            )

    def check_n(self, n: int) -> None:
        """Refuse a sub-sampling grid with more than max_n crops per side."""
        if n > self.max_n:
            raise InputLimitError(
                f"n = {n} crops per side ({n * n:,} crops per image) is over the limit of "
                f"{self.max_n}{_raise('max_n')}"
            )

    def check_crop_bytes(self, nbytes: int, what: str) -> None:
        """Refuse label-augmentation work that would hold more than max_crop_bytes."""
        if nbytes > self.max_crop_bytes:
            raise InputLimitError(
                f"{what} needs {format_bytes(nbytes)}, over the limit of "
                f"{format_bytes(self.max_crop_bytes)}{_raise('max_crop_bytes')}"
            )

    def check_cached_split(self, nbytes: int, name: str) -> None:
        """Refuse holding a split of a streamed source (ImageNet-1K) as one uint8 tensor larger
        than max_cached_split_bytes; callers that can stream test `fits_cached_split` first."""
        if nbytes > self.max_cached_split_bytes:
            raise InputLimitError(
                f"{name}: holding it as one tensor needs {format_bytes(nbytes)}, over the limit "
                f"of {format_bytes(self.max_cached_split_bytes)}{_raise('max_cached_split_bytes')}"
            )
        self.check_decoded(nbytes, name)

    def check_classes(self, count: int, name: str) -> None:
        """Refuse a class count over max_classes before anything is sized by it (a label of
        10^10 in a file would otherwise ask for 10^10 class names and counts)."""
        if count > self.max_classes:
            raise InputLimitError(
                f"{name}: {count:,} classes is over the limit of {self.max_classes:,}"
                f"{_raise('max_classes')}"
            )

    def check_seeds(self, count: int) -> None:
        """Refuse more than max_seeds seeds in one run, before the seed list is built."""
        if count > self.max_seeds:
            raise InputLimitError(
                f"{count:,} seeds is over the limit of {self.max_seeds:,} per run"
                f"{_raise('max_seeds')}"
            )

    def check_model_bytes(self, nbytes: int, name: str) -> None:
        """Refuse a model whose parameters and buffers exceed max_model_bytes (before building)."""
        if nbytes > self.max_model_bytes:
            raise InputLimitError(
                f"{name}: its parameters and buffers need {format_bytes(nbytes)}, over the limit "
                f"of {format_bytes(self.max_model_bytes)}{_raise('max_model_bytes')}"
            )

    def fits_cached_split(self, nbytes: int) -> bool:
        """Whether a streamed split of `nbytes` decoded bytes may be cached as one tensor (it
        must also fit max_decoded_bytes, which every decode checks)."""
        return nbytes <= min(self.max_cached_split_bytes, self.max_decoded_bytes)

    def archive_budget(self, name: str, compressed_bytes: int) -> ArchiveBudget:
        """A running count of one archive's entries and expanded bytes (see ArchiveBudget)."""
        return ArchiveBudget(self, name, int(compressed_bytes), self.max_archive_bytes)


# Each field's environment variable; the names are part of the interface (docs, messages).
ENV_VARS: dict[str, str] = {f.name: "LADD_" + f.name.upper() for f in fields(Limits)}
_BYTE_FIELDS = frozenset(f.name for f in fields(Limits) if f.name.endswith("_bytes"))
_SUFFIXES = {"": 1, "K": KIB, "M": MIB, "G": GIB, "T": 1024**4}


def _raise(field: str) -> str:
    return f" (set {ENV_VARS[field]} to raise it)"


def format_bytes(n: int) -> str:
    """1536 -> '1.5 KiB'; for messages."""
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover


def _parse(field: str, text: str) -> int:
    """A positive whole number; byte caps accept K/M/G/T suffixes (KiB, MiB, GiB, TiB)."""
    var = ENV_VARS[field]
    m = re.fullmatch(r"\s*([0-9][0-9_,]*)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if m is None or (m.group(2) and field not in _BYTE_FIELDS):
        kind = "a byte size such as 8G" if field in _BYTE_FIELDS else "a whole number"
        raise ValueError(f"{var} must be {kind}, got {text!r}")
    value = int(m.group(1).replace("_", "").replace(",", "")) * _SUFFIXES[m.group(2)]
    if value < 1:
        raise ValueError(f"{var} must be at least 1, got {text!r}")
    return value


def check_seeds(count: int) -> None:
    """Refuse a seed count over LADD_MAX_SEEDS (for config validation: `--seeds 100000000`
    built a list of 10^8 seeds for a minute and 5 GB before failing)."""
    current_limits().check_seeds(int(count))


def current_limits() -> Limits:
    """The caps in force: the defaults, each replaced by its LADD_MAX_* variable when set."""
    values = {}
    for field, var in ENV_VARS.items():
        text = os.environ.get(var, "").strip()
        if text:
            values[field] = _parse(field, text)
    return Limits(**values)


class ArchiveBudget:
    """Counts what one archive expands to, entry by entry and chunk by chunk.

    Declared sizes (headers) are checked before reading, so an honest bomb is refused at once;
    actual bytes are counted as they are read or written, so a lying header cannot get past
    the caps either. `limit_bytes` may be lower than max_archive_bytes (an upload's remaining
    budget).
    """

    def __init__(self, limits: Limits, name: str, compressed_bytes: int, limit_bytes: int) -> None:
        self.limits = limits
        self.name = name
        self.compressed = max(1, compressed_bytes)
        self.limit_bytes = min(limit_bytes, limits.max_archive_bytes)
        self.entries = 0
        self.expanded = 0  # bytes counted so far

    def check_entry_count(self, count: int) -> None:
        """Refuse an archive whose directory lists more than max_archive_entries entries."""
        if count > self.limits.max_archive_entries:
            raise InputLimitError(
                f"{self.name}: more than {self.limits.max_archive_entries:,} archive entries"
                f"{_raise('max_archive_entries')}"
            )

    def add_entry(self, declared_bytes: int = 0) -> None:
        """One more entry; `declared_bytes` (its header's size) is checked before it is read."""
        self.entries += 1
        self.check_entry_count(self.entries)
        self._check(self.expanded + max(0, int(declared_bytes)))

    def add_bytes(self, count: int) -> None:
        """`count` bytes actually read or written."""
        self.expanded += count
        self._check(self.expanded)

    def _check(self, total: int) -> None:
        if total > self.limit_bytes:
            field = "max_upload_bytes" if self.limit_bytes < self.limits.max_archive_bytes else None
            raise InputLimitError(
                f"{self.name}: expands to more than {format_bytes(self.limit_bytes)}"
                + _raise(field or "max_archive_bytes")
            )
        ratio = self.limits.max_archive_ratio
        if total > RATIO_FLOOR_BYTES and total > ratio * self.compressed:
            raise InputLimitError(
                f"{self.name}: expands more than {ratio} times its size of "
                f"{format_bytes(self.compressed)} (a zip bomb?){_raise('max_archive_ratio')}"
            )
