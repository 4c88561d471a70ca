"""Training the labeler g (LADD paper, arXiv 2409.16239, section 3.2) and its checkpoints.

A labeler is a small classifier of the distillation architecture (ConvNet-D3 at 32 px, ConvNet-D5
at 128 px) trained from scratch on the real training split "following [2]", i.e. as MTT's
`buffer.py` trains its experts (the "mtt" recipe, the default): SGD lr 0.01 (the paper's Sec. 4.1;
Sec. 3.2 says 0.015), momentum 0, weight decay 0, batch 256, shuffled, DSA augmentation (one op
per batch, the deployment strategy), constant lr (buffer.py's --decay is off). Checkpoints at
10, 20, 30, 40, 50 of 50 epochs; the epoch-10 one is the default labeler (later ones are more
accurate but over-confident, paper Fig. 5). The "strong" recipe (momentum 0.9, weight decay
5e-4, flips and padded crops) is this project's earlier default, kept by name.

A checkpoint `epoch_010.safetensors` holds the model weights under their usual names, the SGD
momentum buffers under `_optim.<name>`, the shuffling generator's state under `_rng.train`, and
its metadata key "ladd_labeler" is the JSON of a LabelerMeta (architecture, source, epoch,
normalisation, class names, seed, test accuracy, the training config). Files are written to a
temporary name and renamed, so a crash never leaves a half-written checkpoint; training resumes
from the last checkpoint whose config matches, with the same optimizer and shuffling state, so a
resumed run computes the same numbers as an uninterrupted one on the same device.
"""

from ladd.labeler.checkpoints import (
    Labeler,
    LabelerMeta,
    checkpoint_name,
    import_labeler,
    list_checkpoints,
    load_labeler,
    read_meta,
)
from ladd.labeler.config import (
    LABELER_FILES,
    LABELER_FORMAT,
    LABELER_RECIPES,
    RESUME_FILE,
    LabelerConfig,
    default_labeler_arch,
)
from ladd.labeler.training import accuracy, random_flip_crop, train_labeler

__all__ = [
    "LABELER_FILES",
    "LABELER_FORMAT",
    "LABELER_RECIPES",
    "RESUME_FILE",
    "Labeler",
    "LabelerConfig",
    "LabelerMeta",
    "accuracy",
    "checkpoint_name",
    "default_labeler_arch",
    "import_labeler",
    "list_checkpoints",
    "load_labeler",
    "random_flip_crop",
    "read_meta",
    "train_labeler",
]
