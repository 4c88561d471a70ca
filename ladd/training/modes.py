"""Label modes (paper Table 6): what a student trains on, full images and/or crops, and the
label each gets. `ladd models` lists them; the training data builder (ladd.training.data) reads
them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MODES", "STORE_MODE", "LabelMode", "label_mode"]


@dataclass(frozen=True)
class LabelMode:
    """What a student trains on: full images and/or crops, and which label each gets.

    full: labels of the full images, one copy of the images per entry ("hard": one-hot, or the
      set's own soft labels such as DATM's when TrainConfig.full_labels is "set_soft"; "labeler": the
      labeler's soft label of the full image, stored in a label-augmented set as `full_soft`);
      empty = no full images.
    crops: labels of the N x N crops, one copy of the crops per entry ("dense": the labeler's
      dense labels; "hard": the image's hard label); empty = no crops.
    """

    name: str
    description: str
    full: tuple[str, ...] = ()
    crops: tuple[str, ...] = ()
    replay: bool = False  # the samples are a soft-label store's stored crops (ladd.stores)

    @property
    def needs_dense(self) -> bool:
        return "dense" in self.crops

    @property
    def needs_labeler(self) -> bool:
        return "labeler" in self.full


# Paper Table 6's rows (GLaD(MTT), ImageNette, IPC 5), in its order.
_MODES: tuple[LabelMode, ...] = (
    LabelMode("baseline", "full images with their hard labels", ("hard",)),
    LabelMode(
        "full_soft", "full images with the labeler's soft label of the full image", ("labeler",)
    ),
    LabelMode(
        "full_hard_soft",
        "full images twice: with the hard label and with the labeler's soft label",
        ("hard", "labeler"),
    ),
    LabelMode("crops_hard", "crops only, each with its image's hard label", (), ("hard",)),
    LabelMode("crops_dense", "crops only, each with its dense soft label", (), ("dense",)),
    LabelMode(
        "crops_hard_dense",
        "crops only, twice: with the image's hard label and with the dense label",
        (),
        ("hard", "dense"),
    ),
    LabelMode(
        "ladd",
        "LADD (Eq. 5): full images with their hard labels + every crop with its dense label",
        ("hard",),
        ("dense",),
    ),
)
MODES: dict[str, LabelMode] = {m.name: m for m in _MODES}

# Beside Table 6: a soft-label store replayed (ladd.stores.replay). Not one of MODES, which are
# the label modes of a (label-augmented) set; it needs a store (`--soft-labels STORE`).
STORE_MODE = LabelMode(
    "store",
    "a soft-label store's epochs as stored: each epoch's crops, flips and mixes with their "
    "soft labels, KL at the store's temperature (SRe2L and its successors' FKD replay)",
    replay=True,
)


def label_mode(name: str) -> LabelMode:
    """The LabelMode called `name` (ValueError naming the choices when unknown)."""
    if name == STORE_MODE.name:
        return STORE_MODE
    try:
        return MODES[name]
    except KeyError:
        raise ValueError(
            f"unknown mode {name!r}; use one of {', '.join(MODES)} (or {STORE_MODE.name} with a "
            "soft-label store)"
        ) from None
