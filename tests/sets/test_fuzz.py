"""Property-based fuzzing of every set reader (issue 14): random bytes, random safetensors
headers, random tensors and metadata. Whatever the file, loading it either works or raises one
of the project's own errors (DistilledFileError, LabelAugmentedFileError), never a raw torch,
safetensors, JSON or numpy error. A fixed, derandomised budget (60 examples per property)
keeps CI fast and repeatable; FUZZ_N=1500 runs a longer random search by hand.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from ladd.sets import DistilledFileError, LabelAugmentedFileError, load_set

OURS = (DistilledFileError, LabelAugmentedFileError)
SEARCH = os.environ.get("FUZZ_N")  # a longer, random search when set
FUZZ = settings(
    max_examples=int(SEARCH or 60),
    deadline=None,
    derandomize=SEARCH is None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Where a file can be put: names a reader may react to, and folders of each layout.
PLACES = (
    "x.pt",
    "x.safetensors",
    "x",
    "set.ladd",
    "x.zip",
    "x.tar",
    "run/images_best.pt",
    "run/labels_best.pt",
    "dd/images.pt",
    "dd/labels.pt",
    "fkd/epoch_0/batch_0.tar",
    "images_zca_10.pt",
)
OPTIONS = (
    {},
    {"source": "shapes"},
    {"describe_only": True},
    {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25), "num_classes": 3},
    {"source": "shapes", "experiment": 0, "format": "dc"},
)


def check_load(root: Path, place: str, options: dict) -> None:
    """Load what `place` makes of the tree under `root`; only our errors may come out."""
    target = root / place.split("/")[0]
    if (root / "run").is_dir() and not (root / "run" / "images_best.pt").exists():
        torch.save(torch.zeros(6, 3, 4, 4), root / "run" / "images_best.pt")
    if (root / "run").is_dir() and not (root / "run" / "labels_best.pt").exists():
        torch.save(torch.arange(3).repeat_interleave(2), root / "run" / "labels_best.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            load_set(target, **options)
        except OURS as err:
            assert "\n" not in str(err), str(err)


def write(root: Path, place: str, data: bytes) -> None:
    path = root / place
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@FUZZ
@given(st.binary(max_size=2048), st.sampled_from(PLACES), st.sampled_from(OPTIONS))
def test_random_bytes(data, place, options):
    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp), place, data)
        check_load(Path(tmp), place, options)


@FUZZ
@given(
    st.sampled_from((b"PK\x03\x04", b"\x80\x02", b"\x80\x04", b"\x00" * 7 + b"{")),
    st.binary(max_size=1024),
    st.sampled_from(PLACES),
)
def test_random_bytes_behind_a_plausible_magic(magic, data, place):
    """Bytes that start like a torch zip, a pickle or a safetensors file."""
    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp), place, magic + data)
        check_load(Path(tmp), place, {"source": "shapes"})


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
DTYPES = ("F32", "F16", "BF16", "F64", "I64", "I32", "U8", "BOOL", "I8", "XX")


@st.composite
def safetensors_headers(draw):
    """A header that may lie about dtypes, shapes and offsets, plus ladd metadata."""
    entries = {}
    for name in draw(
        st.lists(st.sampled_from(("images", "labels", "dense", "x", "soft_labels")), max_size=4)
    ):
        entries[name] = {
            "dtype": draw(st.sampled_from(DTYPES)),
            "shape": draw(st.lists(st.integers(-1, 6), max_size=5)),
            "data_offsets": draw(st.lists(st.integers(-2, 4096), min_size=0, max_size=3)),
        }
    if draw(st.booleans()):
        entries["__metadata__"] = {
            "ladd_set": json.dumps(
                draw(
                    st.dictionaries(
                        st.sampled_from(
                            ("n", "r", "class_names", "mean", "std", "zca", "source", "lr")
                        ),
                        JSON_VALUES,
                        max_size=8,
                    )
                )
            ),
            "format": "ladd.label_augmented/1",
        }
    header = json.dumps(entries).encode()
    payload = draw(st.binary(max_size=4096))
    length = draw(st.sampled_from((len(header), len(header) + 3, max(0, len(header) - 5))))
    return struct.pack("<Q", length) + header + payload


@FUZZ
@given(safetensors_headers(), st.sampled_from(("x.safetensors", "set.ladd", "x")))
def test_random_safetensors_headers(data, place):
    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp), place, data)
        check_load(Path(tmp), place, {"source": "shapes"})
        check_load(Path(tmp), place, {"describe_only": True})


TORCH_DTYPES = (
    torch.float32,
    torch.float16,
    torch.bfloat16,
    torch.float64,
    torch.int64,
    torch.int32,
    torch.uint8,
    torch.bool,
)


@st.composite
def tensors(draw, max_dims: int = 4):
    shape = draw(st.lists(st.integers(0, 5), max_size=max_dims))
    dtype = draw(st.sampled_from(TORCH_DTYPES))
    special = draw(st.sampled_from((None, float("nan"), float("inf"), -1.0, 1e30)))
    x = torch.randn(shape) * draw(st.sampled_from((0.1, 1.0, 40.0)))
    if special is not None and x.numel():
        x.view(-1)[0] = special
    if dtype == torch.bool:
        return x > 0
    if not dtype.is_floating_point:
        return x.nan_to_num(0, 0, 0).clamp(-100, 100).to(dtype)
    return x.to(dtype)


LADD_META = st.fixed_dictionaries(
    {},
    optional={
        "n": st.one_of(st.integers(-1, 4), JSON_VALUES),
        "r": st.one_of(st.floats(0, 1.5), JSON_VALUES),
        "class_names": st.one_of(st.lists(st.text(max_size=4), max_size=4), JSON_VALUES),
        "mean": st.one_of(st.lists(st.floats(), max_size=4), JSON_VALUES),
        "std": st.one_of(st.lists(st.floats(), max_size=4), JSON_VALUES),
        "zca": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {
                    "source": st.sampled_from(("shapes", "nowhere", "")),
                    "eps": st.floats(),
                    "space": st.just("pixels01"),
                }
            ),
            JSON_VALUES,
        ),
        "lr": JSON_VALUES,
        "temperature": JSON_VALUES,
        "labeler": JSON_VALUES,
        "source": JSON_VALUES,
    },
)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            ("images", "labels", "dense", "soft_labels", "full_soft", "x", "logits", "lr")
        ),
        tensors(),
        max_size=5,
    ),
    st.one_of(st.none(), LADD_META),
    st.sampled_from(("x.safetensors", "set.ladd")),
)
def test_random_tensors_and_metadata_in_safetensors(content, meta, place):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / place
        metadata = None
        if meta is not None:
            metadata = {"ladd_set": json.dumps(meta), "format": "ladd.label_augmented/1"}
        save_file({k: v.contiguous() for k, v in content.items()}, str(path), metadata=metadata)
        check_load(Path(tmp), place, {"source": "shapes"})
        check_load(Path(tmp), place, {"describe_only": True})


TORCH_OBJECTS = st.recursive(
    tensors() | st.integers(-5, 5) | st.floats() | st.none() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.dictionaries(
            st.sampled_from(
                ("images", "labels", "data", "accs_all_exps", "soft_labels", "lr", "x", "y")
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=8,
)


@FUZZ
@given(TORCH_OBJECTS, st.sampled_from(PLACES), st.sampled_from(OPTIONS))
def test_random_tensors_and_structures_in_torch_files(obj, place, options):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / place
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(obj, path)
        check_load(Path(tmp), place, options)


def valid_label_augmented() -> tuple[dict, dict]:
    """A sound 3-class label-augmented set (6 images, N = 2) to mutate."""
    dense = torch.softmax(torch.randn(6, 4, 3), dim=-1)
    tensors = {
        "images": torch.randn(6, 3, 4, 4),
        "labels": torch.arange(3).repeat_interleave(2),
        "dense": dense,
        "soft_labels": torch.randn(6, 3),
        "full_soft": torch.softmax(torch.randn(6, 3), dim=-1),
    }
    meta = {
        "n": 2,
        "r": 0.75,
        "class_names": ["a", "b", "c"],
        "mean": [0.5, 0.5, 0.5],
        "std": [0.25, 0.25, 0.25],
        "source": None,
        "zca": None,
        "lr": 0.01,
        "temperature": 1.0,
        "labeler": {},
    }
    return tensors, meta


@FUZZ
@given(st.data())
def test_one_or_two_parts_of_a_sound_label_augmented_file_mutated(data):
    """Deep paths: everything valid except one or two tensors or metadata fields."""
    content, meta = valid_label_augmented()
    for _ in range(data.draw(st.integers(1, 2))):
        if data.draw(st.booleans()):
            key = data.draw(st.sampled_from(sorted(content)))
            if data.draw(st.booleans()):
                content[key] = data.draw(tensors())
            else:
                del content[key]
        else:
            key = data.draw(st.sampled_from(sorted(meta)))
            meta[key] = data.draw(LADD_META.map(lambda m, k=key: m.get(k)) | JSON_VALUES)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "set.ladd"
        save_file(
            {k: v.contiguous() for k, v in content.items()},
            str(path),
            metadata={"ladd_set": json.dumps(meta), "format": "ladd.label_augmented/1"},
        )
        check_load(Path(tmp), "set.ladd", {})
        check_load(Path(tmp), "set.ladd", {"describe_only": True, "mean": (1, 2, 3)})


CODEC_SPECS = ("bfloat16", "int8:affine", "int8:log", "topk:2,uint8", "topk:2,float16,renorm")


def valid_encoded_label_augmented(spec: str) -> tuple[dict, dict]:
    """The sound set above with its dense labels in codec `spec` (payload `dense.<name>`)."""
    from ladd.codecs import parse_codec

    tensors, meta = valid_label_augmented()
    codec = parse_codec(spec)
    for key, t in codec.encode(tensors.pop("dense")).items():
        tensors[f"dense.{key}"] = t
    meta["codec"] = {"name": codec.name, "params": codec.params}
    return tensors, meta


@FUZZ
@given(st.data(), st.sampled_from(CODEC_SPECS))
def test_one_part_of_a_sound_encoded_label_augmented_file_mutated(data, spec):
    """Issue 26: a codec payload tensor replaced or removed, or the codec record mutated, in an
    otherwise sound file; loading works or raises LabelAugmentedFileError."""
    content, meta = valid_encoded_label_augmented(spec)
    choice = data.draw(st.sampled_from(("tensor", "drop", "codec", "params")))
    payload = sorted(k for k in content if k.startswith("dense."))
    if choice == "tensor":
        content[data.draw(st.sampled_from(payload))] = data.draw(tensors())
    elif choice == "drop":
        del content[data.draw(st.sampled_from(payload))]
    elif choice == "codec":
        meta["codec"] = data.draw(
            JSON_VALUES | st.fixed_dictionaries({"name": st.text(max_size=8)})
        )
    else:
        meta["codec"]["params"] = data.draw(
            JSON_VALUES
            | st.dictionaries(st.sampled_from(("k", "values", "residual", "mode")), JSON_VALUES)
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "set.ladd"
        save_file(
            {k: v.contiguous() for k, v in content.items()},
            str(path),
            metadata={"ladd_set": json.dumps(meta), "format": "ladd.label_augmented/1"},
        )
        check_load(Path(tmp), "set.ladd", {})


@pytest.mark.parametrize("spec", CODEC_SPECS)
def test_the_sound_encoded_file_loads(tmp_path, spec):
    """The fuzz base above is itself a readable file (so the mutations test the checks)."""
    from ladd.sets import LabelAugmentedSet

    content, meta = valid_encoded_label_augmented(spec)
    path = tmp_path / "set.ladd"
    save_file(content, str(path), metadata={"ladd_set": json.dumps(meta)})
    assert LabelAugmentedSet.load(path).codec.spec.startswith(spec.split(",")[0])


@FUZZ
@given(st.data(), st.sampled_from(("mtt", "datm", "ddranking", "dc", "dict")))
def test_one_part_of_a_sound_distilled_set_mutated(data, layout):
    """Deep paths of the MTT/DATM/DD-Ranking/DC/dict readers: one piece replaced."""
    parts = {
        "images": torch.randn(6, 3, 4, 4),
        "labels": torch.randn(6, 3)
        if layout in ("datm", "ddranking")
        else torch.arange(3).repeat_interleave(2),
        "lr": torch.tensor(0.01),
    }
    key = data.draw(st.sampled_from(sorted(parts)))
    parts[key] = data.draw(tensors() | TORCH_OBJECTS)
    options = data.draw(st.sampled_from(OPTIONS))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if layout in ("mtt", "datm"):
            (root / "run").mkdir()
            torch.save(parts["images"], root / "run" / "images_best.pt")
            torch.save(parts["labels"], root / "run" / "labels_best.pt")
            torch.save(parts["lr"], root / "run" / "lr_best.pt")
            place = "run"
        elif layout == "ddranking":
            (root / "dd").mkdir()
            for name, value in parts.items():
                torch.save(value, root / "dd" / f"{name}.pt")
            place = "dd"
        elif layout == "dc":
            obj = {
                "data": [[parts["images"], parts["labels"]]],
                "accs_all_exps": {"m": [parts["lr"]]},
            }
            torch.save(obj, root / "res.pt")
            place = "res.pt"
        else:
            torch.save(parts, root / "x")
            place = "x"
        check_load(root, place, options)


@pytest.mark.parametrize("place", ["run/images_best.pt", "dd/images.pt", "x.pt"])
def test_a_sound_file_in_each_place_loads(tmp_path, place):
    """The fuzzers' harness can succeed: a proper 3-class set loads in each place."""
    path = tmp_path / place
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(torch.randn(6, 3, 4, 4), path)
    if place.startswith("run/"):
        torch.save(torch.arange(3).repeat_interleave(2), path.parent / "labels_best.pt")
    ds = load_set(
        path if place == "x.pt" else path.parent, mean=(0.5,) * 3, std=(0.2,) * 3, num_classes=3
    )
    assert len(ds) == 6
