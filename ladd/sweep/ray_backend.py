"""The Ray executor: cells as Ray tasks on a local instance or an existing cluster.

The only module of ladd that imports `ray` (inside its functions: importing this module does not
need ray). With no address it starts a private local instance sized to this machine (all its
CPUs and GPUs, no dashboard) and shuts it down at the end; with an address it joins a cluster
("auto", "host:6379" from a cluster node, "ray://head:10001" through Ray Client) and leaves it
running. If this process already called ray.init (a notebook, a test fixture), that session is
used as it is.

Each cell is one task asking for `cpus_per_cell` CPUs and, on a GPU cluster, `gpus_per_cell` GPUs
(a fraction lets small cells share a card). A task whose worker process dies (killed, out of
memory, node lost) is rerun by Ray up to `max_retries` times; an exception inside the training is
not retried (it would fail again) and the cell is reported failed. Prepared inputs go to the
object store once (`ray.put`) and every task of that input reads the same copy; results (the
DeployResult and the weights) come back the same way to the driver, which alone writes the
workspace's runs. One exception: on the private local instance (this machine, this filesystem)
the tasks keep their training state in the workspace's checkpoint folder, as the serial executor
does, so a cell whose worker or driver was killed resumes instead of starting over; on a cluster,
which may share no filesystem with the driver, a killed cell starts over.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from ladd.plan import TrainPlan
from ladd.sweep.executor import CellOutput, ComputeFn, PlannedCell, compute_cell
from ladd.sweep.spec import SweepSpec

__all__ = ["RayExecutor", "init_ray", "ray_available", "short_temp_dir"]


def ray_available() -> bool:
    """True when `import ray` works here."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ImportError(
            "the Ray executor needs ray: pip install 'ray[client]==2.60.0' (or pip install "
            "-e .[ray]); the serial executor runs without it"
        ) from None
    return ray


def _run_cell(
    compute: ComputeFn,
    plan: TrainPlan,
    dataset: Any,
    test_set: Any,
    threads: int,
    checkpoint_dir: str | None = None,
) -> CellOutput:
    """The task body (module level, so that workers import it instead of unpickling code)."""
    extra = {"checkpoint_dir": checkpoint_dir} if checkpoint_dir is not None else {}
    return compute(plan, dataset, test_set, threads=threads, **extra)


class RayExecutor:
    """Runs cells as Ray tasks; see the module docstring."""

    name = "ray"

    def __init__(
        self,
        spec: SweepSpec,
        *,
        address: str | None = None,
        compute: ComputeFn = compute_cell,
        num_cpus: int | None = None,
        num_gpus: int | None = None,
        temp_dir: str | Path | None = None,
        log_to_driver: bool = True,
        ship_code: bool | None = None,
        checkpoint_dir: str | Path | None = None,
        local_files: bool | None = None,
    ) -> None:
        """address None: a private local instance with `num_cpus` / `num_gpus` (default: all
        of this machine's). temp_dir: Ray's session folder for a local instance (keep it
        short: Ray's socket paths must fit 107 characters). ship_code: send this process's
        `ladd` package to the workers (default: only when joining a cluster by address).
        checkpoint_dir: where the tasks keep their training state, used only where the workers
        see this machine's files (a cluster's workers may not see the folder). local_files:
        whether they do; None: only on the private local instance this executor starts (say
        True for a local instance this process started before, e.g. with init_ray)."""
        self.spec = spec
        self.address = address
        self.compute = compute
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.temp_dir = str(temp_dir) if temp_dir is not None else None
        self.log_to_driver = log_to_driver
        self.ship_code = ship_code
        self.checkpoint_dir = str(checkpoint_dir) if checkpoint_dir is not None else None
        self.local_files = local_files
        self._ray: Any = None
        self._owned = False  # we started the Ray session, so we shut it down
        self._refs: dict[Any, Any] = {}  # ObjectRef -> ObjectRef (handles are the refs)
        self._use_gpu = False
        self._task: Any = None

    # -- session -------------------------------------------------------------------------------
    def start(self) -> None:
        ray = self._ray = _import_ray()
        if not ray.is_initialized():
            init_ray(
                self.address,
                num_cpus=self.num_cpus,
                num_gpus=self.num_gpus,
                temp_dir=self.temp_dir,
                log_to_driver=self.log_to_driver,
                ship_code=self.ship_code,
            )
            self._owned = True
        self._task = ray.remote(_run_cell)
        gpus = float(ray.cluster_resources().get("GPU", 0))
        device = self.spec.device
        if device.startswith("cuda") and gpus == 0:
            self.close()
            raise ValueError(f"device {device!r} asked for, but the Ray cluster has no GPU")
        self._use_gpu = gpus > 0 and device != "cpu"

    def close(self) -> None:
        if self._ray is not None and self._owned and self._ray.is_initialized():
            self._ray.shutdown()
        self._owned = False
        self._refs.clear()

    # -- capacity ------------------------------------------------------------------------------
    def device_kind(self) -> str:
        return "cuda" if self._use_gpu else "cpu"

    def slots(self) -> int:
        """Cells the cluster can run at once now (re-read each time: clusters grow)."""
        res = self._ray.cluster_resources()
        by_cpu = int(float(res.get("CPU", 0)) / self.spec.cpus_per_cell + 1e-9)
        if self._use_gpu:
            by_gpu = int(float(res.get("GPU", 0)) / self.spec.gpus_per_cell + 1e-9)
            return max(1, min(by_cpu, by_gpu))
        return max(1, by_cpu)

    # -- work ----------------------------------------------------------------------------------
    def share(self, obj: Any) -> Any:
        return self._ray.put(obj)

    def submit(self, cell: PlannedCell, dataset: Any, test_set: Any) -> Any:
        task = self._task.options(
            num_cpus=self.spec.cpus_per_cell,
            num_gpus=self.spec.gpus_per_cell if self._use_gpu else 0,
            max_retries=self.spec.max_retries,
            retry_exceptions=False,
            name=f"ladd-sweep:{cell.label}"[:120],
        )
        threads = self.spec.threads or max(1, int(self.spec.cpus_per_cell))
        local = self.local_files
        if local is None:  # the private local instance: the workers see this filesystem
            local = self._owned and self.address is None
        ckpt = self.checkpoint_dir if local else None
        ref = task.remote(self.compute, cell.plan, dataset, test_set, threads, ckpt)
        self._refs[ref] = ref
        return ref

    def wait(self, timeout: float) -> list[tuple[Any, CellOutput | BaseException]]:
        ray = self._ray
        if not self._refs:
            return []
        ready, _ = ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        out: list[tuple[Any, CellOutput | BaseException]] = []
        for ref in ready:
            self._refs.pop(ref, None)
            try:
                out.append((ref, ray.get(ref)))
            except ray.exceptions.RayTaskError as err:  # the training raised: report its cause
                cause = err.cause if isinstance(err.cause, BaseException) else err
                out.append((ref, cause))
            except Exception as err:  # worker died past its retries, task cancelled, ...
                out.append((ref, err))
        return out

    def cancel(self) -> None:
        if self._ray is None:
            return
        for ref in list(self._refs):
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # already finished or gone: nothing left to cancel
                pass
        self._refs.clear()


def init_ray(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    temp_dir: str | Path | None = None,
    log_to_driver: bool = True,
    ship_code: bool | None = None,
) -> None:
    """ray.init for sweeps: with no address a private local instance (all of this machine's
    CPUs and GPUs unless given, no dashboard, its session files under `temp_dir`), whose
    workers import the same `ladd` as this process; with an address, join that cluster
    (`ship_code`, default on there, sends this `ladd` package along as a py_module)."""
    ray = _import_ray()
    kwargs: dict[str, Any] = {"log_to_driver": log_to_driver}
    runtime_env: dict[str, Any] = {}
    if address is None:
        import torch

        env = _worker_env()
        if env:
            runtime_env["env_vars"] = env
        kwargs.update(
            address="local",
            num_cpus=num_cpus or os.cpu_count() or 1,
            num_gpus=num_gpus if num_gpus is not None else torch.cuda.device_count(),
            include_dashboard=False,
        )
        if temp_dir is not None:
            kwargs["_temp_dir"] = str(temp_dir)
    else:
        kwargs["address"] = address
    if address is not None if ship_code is None else ship_code:
        import ladd

        runtime_env["py_modules"] = [str(Path(ladd.__file__).parent)]
    if runtime_env:
        kwargs["runtime_env"] = runtime_env
    ray.init(**kwargs)


def _worker_env() -> dict[str, str]:
    """PYTHONPATH for the workers: this process's `ladd` first, so that a checkout on the path
    (not the installed copy) is what the workers import too."""
    import ladd

    root = str(Path(ladd.__file__).resolve().parent.parent)
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root in parts:
        return {}
    return {"PYTHONPATH": os.pathsep.join([root, *parts])}


def short_temp_dir() -> str:
    """A fresh short folder for a local Ray session (its socket paths must fit 107 bytes)."""
    return tempfile.mkdtemp(prefix="ray-", dir="/tmp" if os.path.isdir("/tmp") else None)
