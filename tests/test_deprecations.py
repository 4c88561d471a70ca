"""Every deprecation of the library warns, names the new form, and is tested (issue 34: "every
deprecation warns and is tested"). A user's old spellings and files keep working with a
DeprecationWarning: the full-labels value "set" (say "set_soft"), training states in the
layouts written before FORMAT 2 (rewritten in it at the next save), a labeler checkpoint's
`augment` field (now `image_augmentation`). The command line's old
spellings are the command line's tests'."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import pytest
import torch

from ladd.training import FORMAT, SavedState, TrainConfig

LADD = Path(__file__).resolve().parents[1] / "ladd"

# Each place in ladd/ (the command line aside) that issues a DeprecationWarning, and the tests
# that check it warns and still reads the old form.
SITES = {
    "ladd/labeler/config.py": (
        "tests/test_labeler.py::test_image_augmentation_keeps_reading_its_old_name_augment_with_a_warning",
    ),
    "ladd/training/config.py": (
        "test_full_labels_set_warns_and_reads_as_set_soft",
        "tests/training/test_data.py::test_a_sets_soft_labels_are_an_option_and_hard_labels_the_default",
    ),
    "ladd/training/checkpoint.py": (
        "test_old_training_state_layouts_warn_and_read",
        "tests/training/test_checkpoint.py::test_a_state_in_the_old_layout_resumes_to_the_uninterrupted_weights",
        "tests/training/test_checkpoint.py::test_reading_an_old_layout_warns_and_names_the_new_format",
    ),
}  # fmt: skip


def _issues_a_deprecation(path: Path) -> bool:
    """Whether the module calls warn(..., DeprecationWarning) (a filter does not count)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "warn":
            args = [*node.args, *(k.value for k in node.keywords)]
            if any(getattr(a, "id", None) == "DeprecationWarning" for a in args):
                return True
    return False


def test_every_deprecation_of_the_library_is_one_this_suite_tests():
    """Walked over ladd/ (nothing listed by hand but the answer): a new DeprecationWarning must
    come with its test and its line here."""
    found = {
        str(p.relative_to(LADD.parent))
        for p in LADD.rglob("*.py")
        if not str(p.relative_to(LADD)).startswith("cli") and _issues_a_deprecation(p)
    }
    assert found == set(SITES)


def test_full_labels_set_warns_and_reads_as_set_soft():
    with pytest.warns(
        DeprecationWarning, match="full_labels 'set' is deprecated: say 'set_soft'"
    ) as rec:
        cfg = TrainConfig(full_labels="set")
    assert cfg.full_labels == "set_soft" and cfg == TrainConfig(full_labels="set_soft")
    assert rec[0].filename == __file__  # it points at the caller's line, not the library's
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TrainConfig(full_labels="set_soft")  # the new spelling says nothing
        TrainConfig.from_dict(TrainConfig(full_labels="set_soft").to_dict())


def _rng() -> torch.Tensor:
    return torch.Generator().manual_seed(0).get_state()


def test_old_training_state_layouts_warn_and_read():
    """The two layouts before FORMAT 2, as their engines wrote them (the reference loop's:
    `seed_index`, `curve`, `model.*`, `state.*`, `done<i>.*`, `rng`; the stacked engine's:
    `p.*`, `b.*`, `opt.<i>`, `rng.<i>`): each read with a DeprecationWarning naming the format
    it is saved in next; the current format says nothing."""
    w = torch.ones(2)
    reference = (
        {"model.w": w, "state.opt.0": w, "done0.w": w, "rng": _rng()},
        {"seed_index": 1, "pass": 2, "curve": [1.0, 0.5], "curves": [[1.0, 0.5, 0.25]]},
    )
    stacked = (
        {"p.w": w, "opt.0": w, "rng.0": _rng(), "rng.1": _rng()},
        {"pass": 2, "curves": [[1.0], [2.0]]},
    )
    read = {}
    for (tensors, meta), engine in ((reference, "reference"), (stacked, "stacked")):
        with pytest.warns(
            DeprecationWarning, match=f"older than format 2.*saved in format {FORMAT}"
        ):
            read[engine] = SavedState.from_file(tensors, meta)
        assert read[engine].engine == engine and read[engine].passes == 2
    assert [len(c) for c in read["reference"].curves] == [3, 2]
    assert len(read["stacked"].rng) == 2
    new = read["stacked"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = SavedState.from_file(new.tensors(), new.meta())
    assert again.meta()["format"] == FORMAT and again.engine == "stacked"
