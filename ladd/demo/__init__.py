"""The one-click demo: every artifact the dashboard's pages need, built with the pipeline itself.

`build_demo(workspace, source=..., size=...)` runs the real LADD pipeline on real CIFAR-10
(`default_source()` picks it whenever it needs no download) or on the offline `shapes` source:

1. a labeler trained on part of the real training split, with checkpoints at several epochs;
2. a random-real distilled set (the fair baseline of the field), saved in the MTT layout;
3. its dense labels from one early labeler checkpoint (a label-augmented set file);
4. a baseline and a LADD deployment run, recorded in the workspace's runs database with weights;
5. real test images (20 per class) to pick class activation map images from.

It is idempotent: a step whose artifact already exists (same settings; a run: the same plan
key) is reused, so a second call returns at once and an interrupted build continues where it
stopped. Sizes and their measured figures: DEMO_SIZES and the README's demo table.

    sizes.py    DemoSize, DEMO_SIZES, the default source and size
    build.py    the build's named steps (build_demo), load_demo, list_demos
    summary.py  DemoArtifacts and the paragraph the home page shows (describe)
    cams.py     the real test images CAM grids pick from
"""

from ladd.demo.build import DEMO_STEPS, _plan, build_demo, list_demos, load_demo
from ladd.demo.cams import CAM_IMAGES, cam_inputs, cam_per_class, load_cam_inputs, save_cam_inputs
from ladd.demo.sizes import (
    DEMO_SIZES,
    DemoSize,
    cifar10_available,
    default_size,
    default_source,
)
from ladd.demo.summary import DemoArtifacts, demo_tag, describe

__all__ = [
    "CAM_IMAGES",
    "DEMO_SIZES",
    "DEMO_STEPS",
    "DemoArtifacts",
    "DemoSize",
    "_plan",
    "build_demo",
    "cam_inputs",
    "cam_per_class",
    "cifar10_available",
    "default_size",
    "default_source",
    "demo_tag",
    "describe",
    "list_demos",
    "load_cam_inputs",
    "load_demo",
    "save_cam_inputs",
]
