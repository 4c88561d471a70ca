"""A synthetic 1000-class workspace for the page tests (the ImageNet-1K scale of the dashboard).

Built with the pipeline itself, as small as it gets: an image folder of 1000 named classes with
one 16 px image per class in each split, a labeler (width 8, two checkpoints), a random-real set
of one image per class, its dense labels at N = 2, a baseline and a LADD run of one epoch each,
and the test images saved for CAMs. About 15 s on two cores; the models learn nothing, which
is fine: the tests look at how 1000 classes are shown, not at what was learned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SIZE = 16  # px
ADJECTIVES = (
    "amber", "azure", "bold", "brisk", "calm", "coral", "crimson", "dusky", "eager", "fern",
    "gilded", "hazel", "ivory", "jade", "keen", "lunar", "misty", "noble", "olive", "pale",
    "quiet", "rusty", "silver", "tawny", "umber",
)  # fmt: skip
NOUNS = (
    "badger", "beetle", "bison", "crane", "dingo", "eagle", "egret", "ferret", "finch", "gecko",
    "heron", "hyena", "ibis", "jackal", "koala", "lemur", "lynx", "marmot", "mole", "newt",
    "ocelot", "otter", "panda", "puffin", "quail", "raven", "robin", "salmon", "shrew", "skunk",
    "sloth", "stork", "tapir", "toad", "trout", "viper", "walrus", "wombat", "yak", "zebra",
)  # fmt: skip
CLASS_NAMES = tuple(f"{a}_{n}" for a in ADJECTIVES for n in NOUNS)  # 25 x 40 = 1000, sorted


@dataclass(frozen=True)
class Thousand:
    """Where the 1000-class build put everything (paths inside `root`)."""

    root: Path
    source: str  # imagefolder:<root>/folders/synth1k
    names: tuple[str, ...]  # class names, index order
    set_path: Path  # the label-augmented set
    distilled_dir: Path
    rded_dir: Path  # RDED's file names, 2 images a class: a folder the pages view lazily
    checkpoints: tuple[Path, ...]
    baseline_run: int
    ladd_run: int


def write_folder(folder: Path, seed: int = 0) -> None:
    """train/ and test/ class folders, one small PNG per class each (a flat colour + noise)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        for name in CLASS_NAMES:
            out = folder / split / name
            out.mkdir(parents=True, exist_ok=True)
            base = rng.integers(0, 256, size=3)
            noise = rng.integers(-40, 40, size=(SIZE, SIZE, 3))
            Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(out / "0.png")


def build_thousand(root: Path) -> Thousand:
    """Every artifact the pages read, for 1000 classes (see the module docstring)."""
    from synthetic_imagenet import write_rded_folder

    from ladd.data import load_source
    from ladd.demo import save_cam_inputs
    from ladd.distill import RandomConfig
    from ladd.labeler import LabelerConfig
    from ladd.pipeline import run_distill, run_label_augment, run_labeler, run_train, slug
    from ladd.plan import plan_training
    from ladd.store import Workspace
    from ladd.training import TrainConfig

    ws = Workspace(root)
    # Written first, so that the newest set (each page's default) is still the labelled one.
    rded_dir = write_rded_folder(ws.sets_dir / "rded_synth1k", classes=1000, ipc=2, size=SIZE)
    folder = ws.root / "folders" / "synth1k"
    write_folder(folder)
    source = f"imagefolder:{folder}"
    train = load_source(source, "train", cache_dir=ws.cache_dir)
    test = load_source(source, "test", cache_dir=ws.cache_dir)
    width = {"width": 8}
    lab_cfg = LabelerConfig(
        arch="convnet_d3", epochs=2, save_at=(1, 2), image_augmentation="none", model_options=width
    )
    lab_dir = ws.labelers_dir / "synth1k"
    lab = run_labeler(
        ws, source, lab_cfg, out_dir=lab_dir, device="cpu", train_set=train, test_set=test
    )
    distilled_dir = ws.sets_dir / "synth1k_random_ipc1"
    drawn = run_distill(
        ws, source, "random", RandomConfig(ipc=1), out_dir=distilled_dir, train_set=train
    )
    set_path = ws.sets_dir / "synth1k_random_ipc1_n2.safetensors"
    la = run_label_augment(
        ws,
        drawn.dataset,
        lab.checkpoints[0].path,
        n=2,
        r=0.75,
        distilled_path=distilled_dir,
        out=set_path,
        device="cpu",
        codec="float32",
    ).dataset
    runs = {}
    for mode in ("baseline", "ladd"):
        cfg = TrainConfig(arch="convnet_d3", mode=mode, epochs=1, seeds=(0,), model_options=width)
        plan = plan_training(la, cfg, "cpu")
        runs[mode], _ = run_train(
            ws, plan, la, test, set_path=set_path, source=source, label=f"1k {mode}"
        )
    save_cam_inputs(test, ws.root / "cam" / f"{slug(source)}_{SIZE}px_1pc.safetensors")
    return Thousand(
        root=ws.root,
        source=source,
        names=tuple(la.class_names),
        set_path=set_path,
        distilled_dir=distilled_dir,
        rded_dir=rded_dir,
        checkpoints=tuple(Path(c.path) for c in lab.checkpoints),
        baseline_run=runs["baseline"],
        ladd_run=runs["ladd"],
    )
