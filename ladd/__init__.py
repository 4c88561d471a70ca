"""LADD Studio core: Label-Augmented Dataset Distillation in plain PyTorch.

LADD (Kang, Lim et al., WACV 2025, arXiv 2409.16239) keeps a distilled set's images and adds
labels: every image is cut into N x N static crops, each crop gets a soft label from a small
labeler, and a student trains on the full images (hard labels) plus every crop (dense labels).

The names below are the library's public API: tensor-first, no workspace, database or config
object needed, on whatever device the tensors are on. "LADD in your own loop"
(docs/guide/own-loop.md) shows them in a plain PyTorch loop, MTT/DATM's `evaluate_synset`, an
RDED-style DataLoader loop, a Lightning module and a DD-Ranking export.

    sub-sampling      crop_boxes, sub_sample
    labels            dense_labels, fit_labeler, check_input_space, InputSpaceError
    training          LabelAugmentedDataset, expand, ladd_loss, LADDLoss, LADDLossOutput,
                      soft_target_cross_entropy, DSA, diff_augment, DSAConfig,
                      create_model
    storage           parse_codec, Codec, EncodedDense, DEFAULT_CODEC, save_ddranking
    limits            Limits, InputLimitError

The package knows nothing of its front ends: importing it never imports Streamlit.
"""

__version__ = "0.1.0"

from ladd.codecs import DEFAULT_CODEC, Codec, EncodedDense, parse_codec
from ladd.dataset import LabelAugmentedDataset, expand
from ladd.dsa import DSA, DSAConfig, diff_augment
from ladd.export import save_ddranking
from ladd.fit import fit_labeler
from ladd.labels import InputSpaceError, check_input_space, dense_labels
from ladd.limits import InputLimitError, Limits
from ladd.losses import LADDLoss, LADDLossOutput, ladd_loss, soft_target_cross_entropy
from ladd.models import create_model
from ladd.subsample import crop_boxes, sub_sample

__all__ = [
    "DEFAULT_CODEC",
    "DSA",
    "Codec",
    "DSAConfig",
    "EncodedDense",
    "InputLimitError",
    "InputSpaceError",
    "LADDLoss",
    "LADDLossOutput",
    "LabelAugmentedDataset",
    "Limits",
    "check_input_space",
    "create_model",
    "crop_boxes",
    "dense_labels",
    "diff_augment",
    "expand",
    "fit_labeler",
    "ladd_loss",
    "parse_codec",
    "save_ddranking",
    "soft_target_cross_entropy",
    "sub_sample",
]
