"""Built-in distillers: random real, Distribution Matching (DM) and Matching Training
Trajectories (MTT), so that LADD can run end to end without another tool's files.

- DM: Zhao & Bilen, "Dataset Condensation with Distribution Matching", WACV 2023.
- MTT: Cazenavette et al., "Dataset Distillation by Matching Training Trajectories", CVPR 2022.

Outputs are DistilledSets, saved in the MTT file layout (images_best.pt, labels_best.pt,
lr_best.pt) plus our JSON metadata, so other tools read ours and `load_distilled` reads it back.
"""

from __future__ import annotations

import json
import math
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from threading import Event
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn
from torch.func import functional_call

from ladd.data import ImageSet, normalise
from ladd.data.zca import PIXEL_MEAN, PIXEL_STD
from ladd.device import resolve_device
from ladd.dsa import DSAConfig, dsa
from ladd.files import save_tensors, write_json
from ladd.models import create_from_spec, create_model
from ladd.numbers import require_finite
from ladd.progress import ProgressEvent, ProgressFn
from ladd.sets import DistilledSet, fit_zca_for, random_real

METHODS = ("random", "dm", "mtt")


# --------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class RandomConfig:
    """The random-real baseline: `ipc` seeded-random real training images of each class."""

    ipc: int = 10
    seed: int = 0


@dataclass(frozen=True)
class DMConfig:
    """Distribution Matching. Defaults follow the DM paper's CIFAR setting (lr_img 1.0,
    real batch 256 per class, momentum 0.5); iterations are far fewer than its 20,000."""

    ipc: int = 10
    iterations: int = 1000
    lr_img: float = 1.0
    momentum: float = 0.5
    batch_real: int = 256
    arch: str = "convnet_d3"
    model_options: dict[str, Any] = field(default_factory=dict)
    dsa: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        require_finite("lr_img", self.lr_img, positive=True)
        require_finite("momentum", self.momentum)


@dataclass(frozen=True)
class ExpertConfig:
    """Expert trajectories for MTT: SGD without momentum or weight decay, as in MTT's buffer
    script (lr_teacher 0.01), DSA on, parameters saved after every epoch."""

    arch: str = "convnet_d3"
    num_experts: int = 5
    epochs: int = 30
    lr: float = 0.01
    batch_size: int = 256
    dsa: bool = True
    zca: bool = False
    seed: int = 0
    model_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require_finite("lr", self.lr, positive=True)


@dataclass(frozen=True)
class MTTConfig:
    """Trajectory matching. Defaults near MTT's CIFAR-10 IPC-10 row (syn_steps 30, expert_epochs 2,
    max_start_epoch 20, lr_img 1000, lr_lr 1e-5, lr_teacher 0.01)."""

    ipc: int = 10
    iterations: int = 1000
    syn_steps: int = 30
    expert_epochs: int = 2
    max_start_epoch: int = 20
    lr_img: float = 1000.0
    lr_lr: float = 1e-5
    lr_teacher: float = 0.01
    momentum: float = 0.5
    batch_syn: int | None = None  # None: the whole synthetic set each step
    dsa: bool = True
    seed: int = 0
    checkpoint_every: int = 50

    def __post_init__(self) -> None:
        for name in ("lr_img", "lr_lr", "lr_teacher"):
            require_finite(name, getattr(self, name), positive=True)
        require_finite("momentum", self.momentum)


@dataclass
class DistillResult:
    """A distilled set with the record of how it was made."""

    distilled: DistilledSet
    method: str
    config: dict[str, Any]
    losses: list[float]
    seconds: float
    peak_memory_bytes: int

    def save(self, folder: str | Path) -> Path:
        """MTT layout plus distill.json (method, config, loss curve, time, peak memory)."""
        folder = Path(folder)
        self.distilled.save_mtt(folder)
        meta = {
            "method": self.method,
            "config": self.config,
            "losses": self.losses,
            "seconds": self.seconds,
            "peak_memory_bytes": self.peak_memory_bytes,
        }
        write_json(folder / "distill.json", meta, indent=2)
        return folder


# --------------------------------------------------------------------------- helpers


def _peak_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    # ru_maxrss is in KiB on Linux: the process's peak resident set.
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _seeded_model(
    arch: str, train: ImageSet, seed: int, options: dict[str, Any], device
) -> nn.Module:
    info = train.info
    model = create_model(
        arch, info.num_classes, info.image_size, info.channels, seed=seed, **options
    )
    return model.to(device)


def _init_from_real(
    real: torch.Tensor, labels: torch.Tensor, ipc: int, num_classes: int, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class-major initial synthetic images drawn from the real ones (no replacement)."""
    imgs, labs = [], []
    for c in range(num_classes):
        idx = torch.nonzero(labels.cpu() == c).flatten()
        if len(idx) < ipc:
            raise ValueError(f"class {c} has {len(idx)} real images, fewer than ipc={ipc}")
        pick = idx[torch.randperm(len(idx), generator=g)[:ipc]]
        imgs.append(real[pick.to(real.device)])
        labs.append(torch.full((ipc,), c, dtype=torch.long))
    return torch.cat(imgs).clone(), torch.cat(labs)


def _class_indices(labels: torch.Tensor, num_classes: int) -> list[torch.Tensor]:
    return [torch.nonzero(labels == c).flatten() for c in range(num_classes)]


def _to_distilled(
    images: torch.Tensor, labels: torch.Tensor, train: ImageSet, fmt: str, lr: float | None, zca
) -> DistilledSet:
    mean, std = (PIXEL_MEAN, PIXEL_STD) if zca is not None else (train.info.mean, train.info.std)
    return DistilledSet(
        images=images.detach().cpu().float(),
        labels=labels.cpu(),
        soft_labels=None,
        lr=lr,
        mean=tuple(mean),
        std=tuple(std),
        class_names=tuple(train.info.class_names),
        format=fmt,
        source=train.info.name,
        zca=zca,
        zca_source=train.info.name if zca is not None else None,
    )


def _report(
    progress: ProgressFn | None, stage: str, step: int, total: int, loss: float | None
) -> None:
    if progress is not None:
        progress(ProgressEvent(stage, step, total, loss=loss))


# --------------------------------------------------------------------------- random


def distill_random(train: ImageSet, ipc: int, seed: int = 0) -> DistillResult:
    """The class-balanced random real subset, as a DistillResult."""
    t0 = time.perf_counter()
    ds = random_real(train, ipc, seed=seed)
    cfg = {"ipc": ipc, "seed": seed}
    return DistillResult(ds, "random", cfg, [], time.perf_counter() - t0, 0)


# --------------------------------------------------------------------------- DM


def distill_dm(
    train: ImageSet,
    cfg: DMConfig,
    *,
    device: str | torch.device = "auto",
    progress: ProgressFn | None = None,
    stop: Event | None = None,
) -> DistillResult:
    """Distribution Matching: make the mean embedding of the synthetic images of each class match
    the real class mean under freshly initialised ConvNets, with the same DSA draw on both sides."""
    dev = resolve_device(device)
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(cfg.seed)
    real = train.normalised(device=dev)  # (N, C, H, W)
    labels = train.labels.to(dev)
    k = train.info.num_classes
    syn, syn_labels = _init_from_real(real, labels, cfg.ipc, k, g)
    syn.requires_grad_(True)
    opt = torch.optim.SGD([syn], lr=cfg.lr_img, momentum=cfg.momentum)
    by_class = _class_indices(labels, k)
    dsa_cfg = DSAConfig() if cfg.dsa else DSAConfig(strategy="")
    losses: list[float] = []
    for it in range(cfg.iterations):
        if stop is not None and stop.is_set():
            break
        net_seed = int(torch.randint(2**31 - 1, (1,), generator=g).item())
        net = _seeded_model(cfg.arch, train, net_seed, cfg.model_options, dev)
        net.train()
        for p in net.parameters():
            p.requires_grad_(False)
        # One forward for all classes: per-sample norms keep the classes independent.
        picks = []
        for c in range(k):
            idx = by_class[c]
            n_real = min(cfg.batch_real, len(idx))
            picks.append(idx[torch.randint(len(idx), (n_real,), generator=g).to(dev)])
        xr = real[torch.cat(picks)]  # (k * n_real, C, H, W), class-major
        xs = syn  # (k * ipc, C, H, W), class-major
        if cfg.dsa:
            # Siamese augmentation: the same op and per-sample draws for real and synthetic.
            state = g.get_state()
            xr = dsa(xr, g, dsa_cfg)
            g_syn = torch.Generator().manual_seed(0)
            g_syn.set_state(state)
            xs = dsa(xs, g_syn, dsa_cfg)
        with torch.no_grad():
            er = net.embed(xr)
        es = net.embed(xs)
        mean_r = torch.stack([e.mean(0) for e in er.split([len(p) for p in picks])])  # (k, D)
        mean_s = es.reshape(k, cfg.ipc, -1).mean(1)  # (k, D)
        loss = ((mean_r - mean_s) ** 2).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item() / k)
        _report(progress, "dm", it + 1, cfg.iterations, losses[-1])
    ds = _to_distilled(syn, syn_labels, train, "dm", None, None)
    return DistillResult(ds, "dm", asdict(cfg), losses, time.perf_counter() - t0, _peak_memory(dev))


# --------------------------------------------------------------------------- MTT experts


@dataclass
class Trajectory:
    """One expert: its model spec and flat parameters after every epoch, (E + 1, P)."""

    spec: dict[str, Any]
    params: torch.Tensor
    config: dict[str, Any]


def _flat_params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _unflatten(model: nn.Module, flat: torch.Tensor) -> dict[str, torch.Tensor]:
    out, i = {}, 0
    for name, p in model.named_parameters():
        n = p.numel()
        out[name] = flat[i : i + n].view_as(p)
        i += n
    return out


def expert_path(out_dir: Path, i: int) -> Path:
    return out_dir / f"expert_{i:03d}.safetensors"


def list_experts(folder: str | Path) -> list[Path]:
    """The expert trajectories `train_experts` wrote in a folder, in order (none: [])."""
    return sorted(Path(folder).glob("expert_*.safetensors"))


def _maybe_zca(train: ImageSet, real: torch.Tensor, use: bool):
    """(training images, ZCA or None): with `use`, MTT's ZCA space (utils.py get_dataset with
    --zca: ToTensor() only, kornia ZCAWhitening(eps=0.1) fitted on this train split's [0, 1]
    pixels) instead of the normalised `real`."""
    if not use:
        return real, None
    zca = fit_zca_for(train, device=real.device)
    pixels = normalise(train.images.to(real.device), PIXEL_MEAN, PIXEL_STD)  # (N, C, H, W)
    return zca.to(real.device).apply(pixels), zca


def train_experts(
    train: ImageSet,
    cfg: ExpertConfig,
    out_dir: str | Path,
    *,
    device: str | torch.device = "auto",
    progress: ProgressFn | None = None,
    stop: Event | None = None,
) -> list[Path]:
    """Train `num_experts` models on the real data, saving each one's parameters every epoch.

    Experts already on disk with the same config are kept (a crashed run resumes at the next
    expert); each file is written atomically.
    """
    dev = resolve_device(device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    real = train.normalised(device=dev)
    real, _ = _maybe_zca(train, real, cfg.zca)
    labels = train.labels.to(dev)
    cfg_json = json.dumps(asdict(cfg), sort_keys=True)
    dsa_cfg = DSAConfig() if cfg.dsa else DSAConfig(strategy="")
    paths: list[Path] = []
    steps_per_epoch = math.ceil(len(real) / cfg.batch_size)
    total = cfg.num_experts * cfg.epochs
    for e in range(cfg.num_experts):
        path = expert_path(out, e)
        if path.exists():
            with safe_open(str(path), "pt") as f:
                if f.metadata().get("config") == cfg_json:
                    paths.append(path)
                    continue
        seed = cfg.seed * 1000 + e
        model = _seeded_model(cfg.arch, train, seed, cfg.model_options, dev)
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.0, weight_decay=0.0)
        g = torch.Generator().manual_seed(seed)
        traj = [_flat_params(model).cpu()]
        for epoch in range(cfg.epochs):
            if stop is not None and stop.is_set():
                return paths
            model.train()
            perm = torch.randperm(len(real), generator=g).to(dev)
            run = 0.0
            for b in range(steps_per_epoch):
                idx = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                x = dsa(real[idx], g, dsa_cfg)
                loss = F.cross_entropy(model(x), labels[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                run += loss.item()
            traj.append(_flat_params(model).cpu())
            _report(progress, "experts", e * cfg.epochs + epoch + 1, total, run / steps_per_epoch)
        meta = {"config": cfg_json, "spec": json.dumps(model.spec.to_dict())}
        save_tensors(path, {"trajectory": torch.stack(traj)}, meta)
        paths.append(path)
    return paths


def load_trajectory(path: str | Path) -> Trajectory:
    """Read one expert file written by train_experts."""
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
        if "spec" not in meta or "trajectory" not in f.keys():
            raise ValueError(f"{path}: not an expert trajectory file written by ladd")
        params = f.get_tensor("trajectory")
    return Trajectory(json.loads(meta["spec"]), params, json.loads(meta.get("config", "{}")))


# --------------------------------------------------------------------------- MTT distillation


def mtt_loss(
    model: nn.Module,
    start: torch.Tensor,
    target: torch.Tensor,
    syn: torch.Tensor,
    syn_labels: torch.Tensor,
    syn_lr: torch.Tensor,
    steps: int,
    batch: int,
    g: torch.Generator,
    dsa_cfg: DSAConfig,
) -> torch.Tensor:
    """Unroll `steps` SGD steps of the student from `start` on the synthetic set, then return
    ||theta_T - theta_target||^2 / ||theta_start - theta_target||^2 (MTT's normalised loss)."""
    params = start.clone().requires_grad_(True)
    n = len(syn)
    for _ in range(steps):
        idx = torch.randperm(n, generator=g)[:batch].to(syn.device)
        x = dsa(syn[idx], g, dsa_cfg)
        logits = functional_call(model, _unflatten(model, params), (x,))
        ce = F.cross_entropy(logits, syn_labels[idx])
        (grad,) = torch.autograd.grad(ce, params, create_graph=True)
        params = params - syn_lr * grad
    num = ((params - target) ** 2).sum()
    den = ((start - target) ** 2).sum().clamp_min(1e-12)
    return num / den


def distill_mtt(
    train: ImageSet,
    experts: list[str | Path],
    cfg: MTTConfig,
    *,
    device: str | torch.device = "auto",
    checkpoint_dir: str | Path | None = None,
    progress: ProgressFn | None = None,
    stop: Event | None = None,
) -> DistillResult:
    """Matching Training Trajectories with a learnable learning rate.

    With `checkpoint_dir`, the synthetic images, the learning rate and the loss curve are saved
    every `checkpoint_every` iterations and a rerun resumes from there.
    """
    if not experts:
        raise ValueError("MTT needs expert trajectories: run `ladd experts` first")
    dev = resolve_device(device)
    t0 = time.perf_counter()
    trajs = [load_trajectory(p) for p in experts]
    expert_cfg = trajs[0].config
    need = cfg.max_start_epoch + cfg.expert_epochs
    have = trajs[0].params.shape[0] - 1
    if need > have:
        raise ValueError(
            f"max_start_epoch + expert_epochs = {need} exceeds the {have} saved expert epochs"
        )
    g = torch.Generator().manual_seed(cfg.seed)
    real = train.normalised(device=dev)
    real, zca = _maybe_zca(train, real, bool(expert_cfg.get("zca", False)))
    labels = train.labels.to(dev)
    k = train.info.num_classes
    model = create_from_spec(trajs[0].spec).to(dev)
    model.train()
    syn, syn_labels = _init_from_real(real, labels, cfg.ipc, k, g)
    syn_labels = syn_labels.to(dev)
    syn_lr = torch.tensor(cfg.lr_teacher, device=dev)
    losses: list[float] = []
    start_it = 0
    ckpt = None
    if checkpoint_dir is not None:
        Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
        ckpt = Path(checkpoint_dir) / "mtt_checkpoint.safetensors"
    cfg_json = json.dumps(asdict(cfg), sort_keys=True)
    momenta: dict[str, torch.Tensor] = {}
    if ckpt is not None and ckpt.exists():
        with safe_open(str(ckpt), "pt") as f:
            meta = f.metadata()
            if meta.get("config") == cfg_json:
                syn = f.get_tensor("images").to(dev)
                syn_lr = f.get_tensor("lr").to(dev)
                losses = json.loads(meta["losses"])
                start_it = int(meta["iteration"])
                g.set_state(f.get_tensor("rng"))
                momenta = {k: f.get_tensor(k).to(dev) for k in f.keys() if k.startswith("mom.")}  # noqa: SIM118
    syn = syn.detach().requires_grad_(True)
    syn_lr = syn_lr.detach().requires_grad_(True)
    opt_img = torch.optim.SGD([syn], lr=cfg.lr_img, momentum=cfg.momentum)
    opt_lr = torch.optim.SGD([syn_lr], lr=cfg.lr_lr, momentum=cfg.momentum)
    # Resume exactly: the optimisers' momentum buffers come back with the images and the lr.
    for name, opt, t in (("images", opt_img, syn), ("lr", opt_lr, syn_lr)):
        if f"mom.{name}" in momenta:
            opt.state[t]["momentum_buffer"] = momenta[f"mom.{name}"].clone()
    batch = cfg.batch_syn or len(syn)
    dsa_cfg = DSAConfig() if cfg.dsa else DSAConfig(strategy="")
    for it in range(start_it, cfg.iterations):
        if stop is not None and stop.is_set():
            break
        traj = trajs[int(torch.randint(len(trajs), (1,), generator=g).item())]
        s = int(torch.randint(cfg.max_start_epoch + 1, (1,), generator=g).item())
        start = traj.params[s].to(dev)
        target = traj.params[s + cfg.expert_epochs].to(dev)
        loss = mtt_loss(
            model, start, target, syn, syn_labels, syn_lr, cfg.syn_steps, batch, g, dsa_cfg
        )
        opt_img.zero_grad(set_to_none=True)
        opt_lr.zero_grad(set_to_none=True)
        loss.backward()
        opt_img.step()
        opt_lr.step()
        with torch.no_grad():
            syn_lr.clamp_(min=1e-6)
        losses.append(loss.item())
        _report(progress, "mtt", it + 1, cfg.iterations, losses[-1])
        if ckpt is not None and ((it + 1) % cfg.checkpoint_every == 0 or it + 1 == cfg.iterations):
            meta = {"config": cfg_json, "losses": json.dumps(losses), "iteration": str(it + 1)}
            tensors = {"images": syn, "lr": syn_lr, "rng": g.get_state()}
            for name, opt, t in (("images", opt_img, syn), ("lr", opt_lr, syn_lr)):
                buf = opt.state.get(t, {}).get("momentum_buffer")
                if buf is not None:
                    tensors[f"mom.{name}"] = buf
            save_tensors(ckpt, tensors, meta)
    ds = _to_distilled(syn, syn_labels, train, "mtt", float(syn_lr.item()), zca)
    config = {**asdict(cfg), "experts": [str(p) for p in experts]}
    return DistillResult(ds, "mtt", config, losses, time.perf_counter() - t0, _peak_memory(dev))
