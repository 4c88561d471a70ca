"""Opening an ImageNet-1K-sized image folder to show one page of classes: the lazy view
(ladd.sets.view, what the dashboard opens) against load_set (every file decoded).

    python -m bench.set_view                          # RDED's names, 1000 classes x 10, 224 px
    python -m bench.set_view --classes 50 --ipc 2 --size 32

Writes a synthetic RDED-named folder (random-pixel JPEGs) once under --dir, then, each in a
fresh process (peak RSS is per process): open_view + the first 20 classes' images, and
load_set. Prints seconds and peak resident memory of each.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import torch
torch.set_num_threads(2)
t0 = time.perf_counter()
from ladd.sets import load_set
from ladd.sets.view import open_view
what, folder, ipc = sys.argv[1], sys.argv[2], int(sys.argv[3])
t1 = time.perf_counter()
if what == "view":
    view = open_view(folder)
    opened = time.perf_counter() - t1
    images = view.images_at(range(min(20 * ipc, len(view))))  # class-major: 20 classes
    count = len(view)
else:
    images = load_set(folder).images
    opened, count = time.perf_counter() - t1, len(images)
seconds = time.perf_counter() - t1
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"how": what, "images": count, "open_s": opened, "seconds": seconds,
                  "import_s": t1 - t0, "peak_rss": peak, "shape": list(images.shape)}))
"""


def write_folder(root: Path, classes: int, ipc: int, size: int) -> Path:
    """RDED's layout (synthesize/main.py:63-64 names), random pixels as JPEG quality 90."""
    import numpy as np
    from PIL import Image

    done = root / f"rded_{classes}x{ipc}_{size}px"
    marker = done / ".complete"
    if marker.exists():
        return done
    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = done / f"{c:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(ipc):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"class{c:05d}_id{i:05d}.jpg", quality=90)
    marker.touch()
    return done


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--ipc", type=int, default=10)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/ladd-bench-set-view"))
    args = ap.parse_args(argv)
    t = time.perf_counter()
    folder = write_folder(args.dir, args.classes, args.ipc, args.size)
    print(f"folder: {folder} ({args.classes * args.ipc:,} files, {time.perf_counter() - t:.1f} s)")
    rows = []
    for how in ("view", "load_set"):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, how, str(folder), str(args.ipc)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        row = json.loads(out.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"{how:>8}: open {row['open_s']:.2f} s, with 20 classes' images {row['seconds']:.2f} s"
            f" (imports {row['import_s']:.1f} s), peak RSS {row['peak_rss'] / 2**20:,.0f} MiB,"
            f" images read {tuple(row['shape'])}"
        )
    return rows


if __name__ == "__main__":
    main()
