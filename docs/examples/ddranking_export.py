"""Exporting a distilled set to DD-Ranking's folder layout (images.pt, labels.pt, lr.pt).

DD-Ranking evaluates the images under its own protocol and relabels them with its teacher, so
the folder holds the images (class by class), a set's own soft labels if it has them, and its
learned lr; LADD's dense labels stay in LADD's file.
"""

import tempfile
from pathlib import Path

import torch

import ladd
from ladd.data import load_source
from ladd.sets import load_set

real = load_source("shapes", "train", limit_per_class=10)
images, labels = real.normalised(), real.labels  # normalised, as the set is trained on
folder = ladd.save_ddranking(Path(tempfile.mkdtemp()) / "shapes_ipc10", images, labels, lr=0.01)
print(sorted(p.name for p in folder.iterdir()))  # ['images.pt', 'lr.pt']
back = load_set(folder, source="shapes")  # LADD reads the folder it wrote
assert torch.equal(back.labels, labels.sort(stable=True).values) and back.format == "ddranking"
