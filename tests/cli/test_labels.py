"""The label commands (ladd.cli.labels): the old spellings of `augment` still read, each with a
deprecation warning that names the new form."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from ladd.cli import app

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")


def augment(inputs: dict[str, Path], out: Path, *extra: str):
    args = ["augment", inputs["set"], "--labeler", inputs["labeler"], "--n", "2", "--r", "0.5",
            "--out", out, "--workspace", inputs["workspace"], "--device", "cpu", *extra]  # fmt: skip
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def warnings_of(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning: ")]


def test_fp16_is_read_as_codec_float16_with_a_deprecation_warning(shapes_inputs, tmp_path):
    from ladd.sets.augmented import file_codec

    res = augment(shapes_inputs, tmp_path / "fp16.safetensors", "--fp16")
    assert res.exit_code == 0, res.output
    assert warnings_of(res.stderr) == ["warning: --fp16 is deprecated: say --codec float16"]
    assert file_codec(tmp_path / "fp16.safetensors") == "float16"
    res = augment(shapes_inputs, tmp_path / "both.safetensors", "--fp16", "--codec", "float32")
    assert res.exit_code == 1 and "--fp16 is --codec float16: give one of them" in res.stderr
    assert not (tmp_path / "both.safetensors").exists()


def test_seed_on_augment_is_ignored_with_a_deprecation_warning(shapes_inputs, tmp_path):
    from ladd.sets import LabelAugmentedSet

    res = augment(shapes_inputs, tmp_path / "seeded.safetensors", "--seed", "7")
    assert res.exit_code == 0, res.output
    (line,) = warnings_of(res.stderr)
    assert line.startswith("warning: --seed on augment is deprecated: it is ignored")
    res = augment(shapes_inputs, tmp_path / "plain.safetensors")
    assert res.exit_code == 0 and warnings_of(res.stderr) == []
    seeded = LabelAugmentedSet.load(tmp_path / "seeded.safetensors")
    plain = LabelAugmentedSet.load(tmp_path / "plain.safetensors")
    assert torch.equal(seeded.probs(), plain.probs())  # nothing drawn: the seed changes nothing


def test_a_bad_codec_is_one_line(shapes_inputs, tmp_path):
    res = augment(shapes_inputs, tmp_path / "x.safetensors", "--codec", "nope")
    assert res.exit_code == 1
    assert res.stderr.strip().startswith("error: --codec:") and len(res.stderr.splitlines()) == 1


def test_stats_read_a_label_augmented_set_on_its_own_grid(shapes_inputs, tmp_path):
    """Without --labeler, stats are the file's stored labels; with it, the labeler labels the
    set again on the set's own grid (N = 2 here, whatever --n says): the same figures."""
    import json

    la = tmp_path / "f32.safetensors"
    assert augment(shapes_inputs, la, "--codec", "float32").exit_code == 0
    common = ["--workspace", shapes_inputs["workspace"], "--device", "cpu", "--json"]
    stored = runner.invoke(app, [str(a) for a in ["stats", la, *common]])
    again = runner.invoke(
        app,
        [
            str(a)
            for a in ["stats", la, "--labeler", shapes_inputs["labeler"], "--n", "3", *common]
        ],  # fmt: skip
    )
    assert stored.exit_code == 0 and again.exit_code == 0, stored.output + again.output
    a = json.loads(stored.stdout.strip().splitlines()[-1])["1"]
    b = json.loads(again.stdout.strip().splitlines()[-1])["1"]
    for key in ("mean_max_prob", "mean_entropy", "agreement"):
        assert a[key] == pytest.approx(b[key], abs=1e-5), key
