"""ladd.plan: plan_training settles every choice a TrainConfig leaves open, once, into a frozen
plan (protocol, lr, precision, engine and compile mode, the crop grid, the model spec), refuses
what cannot be trained with one line, and names the run by its key. It is the one function in
ladd/ that settles a config."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ladd.dense import augment
from ladd.models import adamw_lr, default_lr
from ladd.plan import ENGINES, TrainPlan, plan_training, set_digest
from ladd.sets import DistilledSet, random_real
from ladd.training import TrainConfig, TrainingData
from tests.test_dense import make_labeler

LADD = Path(__file__).resolve().parents[1] / "ladd"
CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # a CUDA plan is made on meta: no GPU needed
NARROW = {"model_options": {"width": 8}}


@pytest.fixture(scope="module")
def small():
    return random_real("shapes", 2, seed=0, limit_per_class=4, image_size=16)  # 20 images


@pytest.fixture(scope="module")
def large():
    return random_real("shapes", 1, seed=0, limit_per_class=2, image_size=128)  # 10 images


@pytest.fixture(scope="module")
def labelled(small):
    return augment(small, make_labeler(small), 3, 0.5, device="cpu", codec="float16")


def _data(size: int = 16) -> TrainingData:
    x = torch.zeros(4, 3, size, size)
    return TrainingData(x, torch.full((4, 4), 0.25), num_full=4, num_crops=0, num_classes=4)


# -- what is settled ---------------------------------------------------------------------------


def test_a_plan_holds_a_settled_config(small):
    plan = plan_training(small, TrainConfig(mode="baseline", **NARROW), CPU)
    assert plan.config.settled and plan.config.protocol != "auto" and plan.config.lr is not None
    assert plan.config.precision in ("fp32", "bf16") and plan.engine in ENGINES
    assert not TrainConfig().settled
    with pytest.raises(ValueError, match="a plan holds a settled config"):
        replace(plan, config=TrainConfig())
    with pytest.raises(ValueError, match="plan the run first"):
        _ = TrainConfig().passes  # an unsettled config is never trained


def test_the_protocol_follows_the_sets_image_size_unless_asked(small, large):
    assert plan_training(small, TrainConfig(**NARROW), CPU).config.protocol == "mtt"
    big = TrainConfig(arch="convnet_d5", mode="baseline", **NARROW)
    assert plan_training(large, big, CPU).config.protocol == "glad"
    asked = plan_training(large, replace(big, protocol="mtt"), CPU)
    assert asked.config.protocol == "mtt"
    assert any("protocol glad (auto" in n for n in plan_training(large, big, CPU).notes)


class _DistilledWith(DistilledSet):
    """A set that says it was distilled with AlexNet (a reader's `distill_arch`)."""

    distill_arch = "alexnet"


def test_lr_rules(small):
    """--lr as asked; under mtt a set's learned lr (MTT/DATM lr_best.pt) for the architecture
    it was distilled with only (GLaD's eval_loop gives every model its own rate, so under glad
    the set's lr is unused); under rded RDED's AdamW rate of the student (the registry's); else
    the architecture's rate at the set's size."""
    own = replace(small, lr=0.03)
    base = TrainConfig(mode="baseline", **NARROW)

    def lr(ds, **kw) -> float:
        return plan_training(ds, replace(base, **kw), CPU).lr

    assert lr(own) == 0.03  # convnet_d3: the field's distillation model at 16 px
    assert lr(own, arch="convnet_d2") == default_lr("convnet_d2", 16)
    assert lr(own, arch="alexnet", model_options={}) == default_lr("alexnet", 16)
    alexnet_set = _DistilledWith(**{f: getattr(own, f) for f in own.__dataclass_fields__})
    assert lr(alexnet_set, arch="alexnet", model_options={}) == 0.03
    assert lr(alexnet_set) == default_lr("convnet_d3", 16)  # not the model it was made with
    assert lr(own, protocol="glad") == default_lr("convnet_d3", 16)  # unused under glad
    assert lr(own, lr=0.5) == 0.5  # asked for wins
    assert lr(small) == default_lr("convnet_d3", 16)  # no lr of its own
    assert lr(own, protocol="rded") == adamw_lr("convnet_d3")  # an SGD rate is no AdamW rate
    assert lr(small, protocol="rded", arch="alexnet", model_options={}) == adamw_lr("alexnet")
    assert lr(small, protocol="rded", lr=0.002) == 0.002
    with pytest.raises(ValueError, match="no AdamW lr for 'convnet_d2'.*pass --lr"):
        lr(small, protocol="rded", arch="convnet_d2")
    notes = plan_training(own, base, CPU).notes
    assert any("the set's learned lr" in n for n in notes)


def test_precision_and_engine_per_device_trainer_and_batch_norm(small, large):
    base = TrainConfig(mode="baseline", **NARROW)

    def planned(ds=small, device=CPU, engine=None, **kw) -> TrainPlan:
        return plan_training(ds, replace(base, **kw), device, engine=engine)

    cpu = planned()
    assert (cpu.engine, cpu.compile, cpu.config.precision) == ("sequential", "off", "fp32")
    assert planned(trainer="reference").engine == "reference"
    assert planned(trainer="ddp").engine == "ddp"  # one process: the reference loop runs it
    gpu = planned(device=CUDA)
    assert (gpu.engine, gpu.compile, gpu.config.precision) == ("stacked", "policy", "bf16")
    assert gpu.device == "cuda" and gpu.key != cpu.key  # trained in bf16: another run
    assert planned(device=CUDA, precision="fp32").config.precision == "fp32"
    ref = planned(device=CUDA, trainer="reference")
    assert (ref.engine, ref.config.precision) == ("reference", "fp32")
    big = planned(large, CUDA, arch="convnet_d5")
    assert (big.engine, big.compile) == ("stacked", "default")  # >= 128 px: compiled
    bn = planned(device=CUDA, model_options={"width": 8, "norm": "batch"})
    assert (bn.engine, bn.config.precision) == ("sequential", "fp32")  # seeds cannot stack
    with pytest.raises(ValueError, match="stacked engine cannot train BatchNorm"):
        planned(engine="stacked", model_options={"width": 8, "norm": "batch"})
    forced = planned(engine="stacked")
    assert (forced.engine, forced.compile) == ("stacked", "off")  # asked for, on a CPU
    assert planned(device=CUDA, engine="stacked").compile == "policy"
    with pytest.raises(ValueError, match="unknown engine 'fastest'"):
        planned(engine="fastest")


def test_the_grid_is_the_label_augmented_sets_own(small, labelled):
    """A label-augmented set's labels were made on its own grid (here N 3, R 0.5): the plan
    uses it whatever the config says; a plain set's crop modes need a grid; modes without crops
    use none, and the record says none."""
    ladd = plan_training(labelled, TrainConfig(mode="ladd", n=5, r=0.625, **NARROW), CPU)
    assert (ladd.config.n, ladd.config.r) == (3, 0.5)
    assert (ladd.set.n, ladd.set.r, ladd.set.codec) == (3, 0.5, "float16")
    assert ladd.set.label_augmented and ladd.set.digest == set_digest(labelled)
    crops = plan_training(small, TrainConfig(mode="crops_hard", n=2, r=0.5, **NARROW), CPU)
    assert (crops.config.n, crops.config.r) == (2, 0.5) and not crops.set.label_augmented
    with pytest.raises(ValueError, match="needs a crop grid"):
        plan_training(small, TrainConfig(mode="crops_hard", n=None, **NARROW), CPU)
    for ds in (small, labelled):
        plain = plan_training(ds, TrainConfig(mode="baseline", **NARROW), CPU)
        assert plain.config.n is None and plain.config.r is None
        assert "n" not in plain.train_record() and "r" not in plain.train_record()
    assert ladd.train_record()["n"] == 3 and ladd.train_record()["r"] == 0.5


def test_the_record_holds_only_what_the_protocol_uses(small):
    rded = plan_training(small, TrainConfig(mode="baseline", protocol="rded", **NARROW), CPU)
    rec = rded.train_record()
    assert not {"momentum", "weight_decay", "dsa_strategy", "n", "r"} & set(rec)
    assert rec["full_labels"] == "hard"  # the baseline trains on full images
    assert rec["augmentation"] == "rded" and rec["optimizer"].startswith("adamw")
    mtt = plan_training(small, TrainConfig(mode="baseline", **NARROW), CPU).train_record()
    assert {"momentum", "weight_decay", "dsa_strategy", "full_labels"} <= set(mtt)
    assert mtt["optimizer"] == "sgd" and mtt["augmentation"] == "dsa"
    crops = plan_training(small, TrainConfig(mode="crops_hard", n=2, r=0.5, **NARROW), CPU)
    assert "full_labels" not in crops.train_record()  # no full image is trained on
    no_dsa = plan_training(small, TrainConfig(mode="baseline", dsa=False, **NARROW), CPU)
    assert "dsa_strategy" not in no_dsa.train_record()
    assert no_dsa.train_record()["augmentation"] == "none"
    whole = rded.record()
    assert whole["key"] == rded.key and whole["engine"] == rded.engine
    assert whole["model"] == rded.spec.to_dict() and whole["set"]["digest"] == rded.set.digest


def test_the_key_names_the_run(small):
    cfg = TrainConfig(mode="baseline", **NARROW)
    a = plan_training(small, cfg, CPU)
    assert plan_training(small, cfg, CPU).key == a.key  # the same run
    assert plan_training(small, replace(cfg, seeds=(1,)), CPU).key != a.key
    assert plan_training(small, replace(cfg, epochs=3), CPU).key != a.key
    other = replace(small, images=small.images.clone())
    other.images[0, 0, 0, 0] += 1.0
    assert plan_training(other, cfg, CPU).key != a.key  # another set's bytes
    copy = replace(small, images=small.images.clone())
    assert plan_training(copy, cfg, CPU).key == a.key  # the same bytes
    assert a.checkpoint("/ws/checkpoints") == Path(f"/ws/checkpoints/train-{a.key}.safetensors")


def test_a_researchers_own_tensors_are_planned_too():
    plan = plan_training(_data(16), TrainConfig(arch="convnet_d2", **NARROW), CPU)
    assert plan.config.protocol == "mtt" and plan.set.image_size == 16
    assert plan.spec.num_classes == 4 and plan.set.format == "training data"


# -- what is refused -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda ds: plan_training(ds, TrainConfig(arch="alexnet", model_options={"width": 8})),
         "'alexnet' has no option 'width'"),
        (lambda ds: plan_training(ds, TrainConfig(arch="nonet")), "nonet"),
        (lambda ds: plan_training(ds, TrainConfig(protocol="rded", arch="convnet_d1")),
         "pass --lr"),
        (lambda ds: plan_training(ds, TrainConfig(mode="crops_hard", r=None)), "crop grid"),
        (lambda ds: plan_training(ds, TrainConfig(), engine="warp"), "unknown engine"),
        (lambda ds: TrainConfig(lr=float("inf")), "lr must be a finite number > 0, got inf"),
        (lambda ds: TrainConfig(lr=float("nan")), "lr must be a finite number"),
        (lambda ds: TrainConfig(lr=0.0), "lr must be a finite number > 0"),
        (lambda ds: TrainConfig(lr=-0.1), "lr must be a finite number > 0"),
        (lambda ds: TrainConfig(momentum=float("inf")), "momentum must be a finite number"),
        (lambda ds: TrainConfig(weight_decay=float("nan")), "weight decay must be a finite"),
        (lambda ds: TrainConfig(r=float("inf")), "r must be a finite number > 0"),
        (lambda ds: TrainConfig(seeds=tuple(range(1001))), "over the limit of 1,000 per run"),
        (lambda ds: TrainConfig(seeds=()), "at least one seed"),
        (lambda ds: TrainConfig(epochs=0), "epochs must be between 1"),
        (lambda ds: TrainConfig(precision="fp8"), "unknown precision"),
        (lambda ds: TrainConfig(trainer="fastest"), "unknown trainer"),
        (lambda ds: TrainConfig(loss="sum"), "unknown loss"),
    ],
)  # fmt: skip
def test_bad_options_are_one_line_value_errors(small, make, match):
    with pytest.raises(ValueError, match=match) as err:
        make(small)
    assert "\n" not in str(err.value)


def test_a_set_read_for_description_only_is_refused(tmp_path):
    class Described(DistilledSet):
        def require_trainable(self) -> None:
            raise ValueError("read for description only: no input space")

    ds = random_real("shapes", 1, seed=0, limit_per_class=1, image_size=16)
    described = Described(**{f: getattr(ds, f) for f in ds.__dataclass_fields__})
    with pytest.raises(ValueError, match="description only"):
        plan_training(described, TrainConfig(), CPU)


# -- the one settling function ----------------------------------------------------------------

SETTLED = {"protocol", "lr", "precision"}
RULES = {"default_protocol", "adamw_lr"}  # the rules that settle a protocol and an AdamW rate


def _settling_sites() -> tuple[set[str], set[str]]:
    """Where ladd/ replaces protocol, lr or precision on a config (dataclasses.replace with
    one of them, or setattr of one), and where it calls the settling rules."""
    replaces, rules = set(), set()
    for path in sorted(LADD.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        where = str(path.relative_to(LADD.parent))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                keywords = {k.arg for k in node.keywords}
                if name == "replace" and keywords & SETTLED:
                    replaces.add(f"{where}:{fn.name}")
                if name in ("setattr", "__setattr__") and len(node.args) >= 2:
                    field = node.args[1]
                    if isinstance(field, ast.Constant) and field.value in SETTLED:
                        replaces.add(f"{where}:{fn.name}")
                if name in RULES:
                    rules.add(f"{where}:{fn.name}")
    return replaces, rules


def test_plan_training_is_the_one_function_that_settles_a_config():
    """Issue 34: "Exactly one function settles a training config (grep it)". Walked over every
    module of ladd/ (nothing listed by hand): only ladd/plan.py replaces protocol, lr or
    precision on a config, and only it applies the rules that settle them (its helper _lr is
    plan_training's own)."""
    replaces, rules = _settling_sites()
    assert replaces == {"ladd/plan.py:plan_training"}
    assert rules <= {"ladd/plan.py:plan_training", "ladd/plan.py:_lr"}
    assert rules  # the walk found the rules where they are applied
