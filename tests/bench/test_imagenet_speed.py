"""bench.imagenet_speed and scripts/imagenet_gpu.sh rehearse on the CPU at tiny sizes: every
stage runs and writes its record (the figures themselves are for a GPU; nothing here is timed).
The benchmark runs in this process (its ddp stage launches its torchrun job as on the GPU); the
shell wrapper is checked to call it as the rehearsal's command line says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # bench/ is not installed
from bench import imagenet_speed  # noqa: E402


def test_the_shell_wrapper_runs_the_benchmark():
    sh = ROOT / "scripts" / "imagenet_gpu.sh"
    assert subprocess.run(["bash", "-n", str(sh)], capture_output=True).returncode == 0
    text = sh.read_text()
    assert '"$PY" -m bench.imagenet_speed "${ARGS[@]}"' in text
    assert (
        'ARGS=(--out "$OUT_DIR/imagenet.json" --stages "${STAGES:-throughput,epoch,ddp}")' in text
    )
    assert '[ -n "${TINY:-}" ] && ARGS+=(--tiny)' in text
    assert '[ -n "${DEVICE:-}" ] && ARGS+=(--device "$DEVICE")' in text


def test_every_stage_runs_and_records_its_figure(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the ddp stage's ranks
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        imagenet_speed.main(
            ["--out", str(tmp_path / "imagenet.json"), "--stages", "throughput,epoch,ddp",
             "--tiny", "--device", "cpu"]
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    records = json.loads((tmp_path / "imagenet.json").read_text())
    stages = [(r["stage"], r.get("what")) for r in records]
    assert stages == [
        ("throughput", "ours"),
        ("throughput", "plain torchvision loop"),
        ("epoch", "one epoch of the IPC 10 LADD run"),
        ("ddp", None),
    ]
    for r in records:
        assert r["samples_per_s"] > 0 and r["tiny"] is True
        assert r["card"].startswith("CPU") and r["date"] and r["command"].startswith("python -m")
    ours, epoch = records[0], records[2]
    assert ours["samples"] == 32 * 5 and epoch["samples"] == 32 * 5  # 8 x 4 images, 1 + 2 x 2 views
    assert records[3]["world"] == 2
    # gloo CPU ranks normalise each shard (no SyncBatchNorm); the saved models hold BatchNorm2d
    assert records[3]["sync_batchnorm_forwards"] == 0 and records[3]["saved_batchnorm_plain"]
    assert "x 300 epochs =" in out


def test_the_ladd_data_has_the_protocols_shape() -> None:
    from ladd.cropped import CroppedInputs

    sizes = imagenet_speed.Sizes.of(tiny=True)
    data = imagenet_speed.ladd_data(sizes)
    assert (
        isinstance(data.inputs, CroppedInputs)
        and data.inputs.images.dtype.is_floating_point is False
    )
    assert len(data) == 32 * 5 and data.num_full == 32 and data.num_classes == 8
    full = imagenet_speed.Sizes.of(tiny=False)
    assert (full.classes, full.ipc, full.image, full.n, full.batch) == (1000, 10, 224, 5, 100)
    assert data.inputs[0:2].shape == (2, 3, 32, 32)  # normalised float batches
    assert data.targets[torch.tensor([0, 40])].shape == (2, 8)  # a hard row, a decoded crop row
