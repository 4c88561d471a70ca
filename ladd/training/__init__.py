"""The rules of training a student on a (label-augmented) distilled set, one concept a module.

    modes.py        label modes (paper Table 6): what a student trains on
    protocols.py    the protocols (mtt, glad, rded) named by the code the paper follows
    config.py       TrainConfig: what a front end asks for (settled by ladd.plan)
    data.py         the flat training set of a label mode (full images, then crops)
    losses.py       the soft-target cross-entropy
    optim.py        the protocol's optimiser, lr schedule, weight EMA, and the pass end
    checkpoint.py   a run's training state: the file and its one format
    models.py       model spec, seeded initial weights, FLOPs per sample, TrainedModels
    errors.py       TrainingStopped, NonFiniteLoss, NonFiniteWeights

The one training loop (ladd.trainers.loop.fit) and its engines read these; a run is planned by
ladd.plan (the one place a TrainConfig is settled). Per pass the samples are shuffled with a
seeded generator and fed in batches; each batch's loss is the soft-target cross-entropy
averaged over the batch ("mean", what the field's loaders do), or that times the samples per
image ("image_sum": Eq. 5's per-image sum of the crop terms).
"""

from ladd.training.checkpoint import (
    FORMAT,
    SavedState,
    TrainCheckpoint,
    checkpoint_path,
    saved_engine,
)
from ladd.training.config import (
    FULL_LABELS,
    LOSSES,
    PRECISIONS,
    STRATEGY_DEFAULTS,
    TRAINERS,
    TrainConfig,
)
from ladd.training.data import TrainingData, build_training_data, loss_weight
from ladd.training.errors import NonFiniteLoss, NonFiniteWeights, TrainingStopped
from ladd.training.losses import soft_cross_entropy
from ladd.training.models import TrainedModels, init_model, model_spec, step_flops
from ladd.training.modes import MODES, LabelMode, label_mode
from ladd.training.optim import (
    LRSchedule,
    Monitor,
    PassEnd,
    WeightEMA,
    check_finite,
    check_finite_weights,
    float_state,
    make_optimizer,
    make_scheduler,
)
from ladd.training.protocols import (
    PROTOCOLS,
    RDED_ADAMW,
    Protocol,
    default_protocol,
    distillation_arch,
    half_cosine_factor,
    rded_batch_size,
)

__all__ = [
    "FORMAT",
    "FULL_LABELS",
    "LOSSES",
    "MODES",
    "PRECISIONS",
    "PROTOCOLS",
    "RDED_ADAMW",
    "STRATEGY_DEFAULTS",
    "TRAINERS",
    "LRSchedule",
    "LabelMode",
    "Monitor",
    "NonFiniteLoss",
    "NonFiniteWeights",
    "PassEnd",
    "Protocol",
    "SavedState",
    "TrainCheckpoint",
    "TrainConfig",
    "TrainedModels",
    "TrainingData",
    "TrainingStopped",
    "WeightEMA",
    "build_training_data",
    "check_finite",
    "check_finite_weights",
    "checkpoint_path",
    "default_protocol",
    "distillation_arch",
    "float_state",
    "half_cosine_factor",
    "init_model",
    "label_mode",
    "loss_weight",
    "make_optimizer",
    "make_scheduler",
    "model_spec",
    "rded_batch_size",
    "saved_engine",
    "soft_cross_entropy",
    "step_flops",
]
