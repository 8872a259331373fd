"""High-precision reference gradients: analytic where a task has one, float64 dopri8 otherwise.

`reference_gradient(task, size, seed)` returns a `Reference`: ``dL/dy0`` and ``dL/dparam`` of
the task's float64 CPU problem, how they were obtained (``kind``), and an estimate of their own
relative 2-norm error, so a measured error below about 10x that estimate says only "at least
this accurate". Non-analytic references backpropagate (the ``naive`` method) through
torchdiffeq's dopri8 at ``rtol = atol = 1e-12`` (a task may ask for another tolerance), with a
step ending on every output time so that no output is interpolated; the
error estimate is the relative difference to a second solve at a 100x looser tolerance, which
bounds the error of the looser solve and so, conservatively, of the reference.

References are cached on disk (``ODEBENCH_CACHE`` or ``~/.cache/odebench/references``) under a
sha256 of everything they depend on; a cache hit is bitwise identical to a recompute. Each file
also holds the sha256 of its own content (`Reference.content_hash`, computed when it was
written): a file whose bytes no longer match it (a flipped bit, a partial copy) is recomputed
with a warning, never trusted, and every Record names the content hash it was scored against.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch

from odebench import methods, tasks
from odebench.errors import InvalidInputError, UnsupportedError, describe
from odebench.tasks.base import Problem

#: Bumped whenever the stored format or the way references are computed changes.
FORMAT_VERSION = 2
#: The looser check solve runs at this factor times the reference tolerance.
CHECK_FACTOR = 100.0
#: Error estimate of an analytic gradient that declares none: a few float64 roundings.
ANALYTIC_ERROR = 1e-14


@dataclass(frozen=True, eq=False)
class Reference:
    """A reference gradient of one task problem (float64, CPU).

    Attributes:
        task, size, seed: which problem (size resolved to the task's default when None).
        grad_y0: ``dL/dy0``, shaped like ``y0``.
        grad_params: ``{name: dL/dparam}`` in ``func.named_parameters()`` order.
        kind: ``"analytic"``, ``"user"`` (a gradient the user passed) or ``"dopri8"``.
        error_estimate: relative 2-norm error estimate of the flattened gradient.
        settings: how it was computed (method, solver, tolerances, check tolerance).
        key: the cache key (sha256 hex digest).
        compute_time_s: seconds the computation took when it was first made (a cache hit
            keeps the original's time).
        content_hash: sha256 (hex) of the gradient's float64 bytes and the error estimate.
    """

    task: str
    size: int
    seed: int
    grad_y0: torch.Tensor
    grad_params: dict[str, torch.Tensor]
    kind: str
    error_estimate: float
    settings: dict[str, Any]
    key: str
    compute_time_s: float = field(default=0.0)

    @property
    def flat(self) -> torch.Tensor:
        """The gradient as one float64 vector, in the order of `flatten`."""
        return flatten(self.grad_y0, self.grad_params)

    @property
    def content_hash(self) -> str:
        """sha256 of what a measurement is scored against: the gradient and its error estimate."""
        return content_hash(self.grad_y0, self.grad_params, self.error_estimate)


def content_hash(grad_y0: torch.Tensor, grad_params: dict[str, torch.Tensor], error: float) -> str:
    """sha256 (hex) of a reference's values: parameter names, float64 bytes, error estimate."""
    digest = hashlib.sha256(json.dumps([list(grad_params), float(error)]).encode())
    digest.update(flatten(grad_y0, grad_params).numpy().tobytes())
    return digest.hexdigest()


def flatten(grad_y0: torch.Tensor, grad_params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Concatenate ``dL/dy0`` then each parameter's gradient, in the dict's order, as float64 CPU.

    Build `grad_params` in ``func.named_parameters()`` order (as references do) so two gradients
    of the same problem flatten to comparable vectors.
    """
    parts = [grad_y0, *grad_params.values()]
    return torch.cat([g.detach().reshape(-1).to(dtype=torch.float64, device="cpu") for g in parts])


def default_cache_dir() -> Path:
    """``$ODEBENCH_CACHE``, or ``~/.cache/odebench/references``."""
    env = os.environ.get("ODEBENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "odebench" / "references"


#: How a reference gradient can be computed: in closed form, by float64 dopri8, or given by the
#: user (`odebench.usermodel.UserTask`: its task's `exact_gradient_kind`).
REFERENCE_KINDS = ("analytic", "dopri8", "user")


def reference_settings(task_name: str, size: int | None = None, *, kind: str | None = None) -> dict[str, Any]:
    """How the reference of `task_name` at `size` is computed."""
    task = tasks.get(task_name)
    size = task.default_size if size is None else size
    return _settings(task, size, task.build(size), kind)


def cache_key(task_name: str, size: int | None = None, seed: int = 0, *, kind: str | None = None) -> str:
    """The sha256 hex digest under which the reference of this problem is cached."""
    task = tasks.get(task_name)
    size = task.default_size if size is None else size
    problem = task.build(size, seed=seed)
    return _key(task_name, size, seed, problem, _settings(task, size, problem, kind))


def reference_gradient(
    task_name: str,
    size: int | None = None,
    seed: int = 0,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    kind: str | None = None,
) -> Reference:
    """The reference gradient of task `task_name` at `size` (None: default) built with `seed`.

    Read from the cache when present (`use_cache`), otherwise computed and stored atomically.
    `kind` None takes the task's exact gradient where it has one (its `exact_gradient_kind`:
    ``"analytic"``, or ``"user"`` for a gradient the user passed) and dopri8 otherwise;
    ``"dopri8"`` forces the numerical reference (to check it against an exact one).
    """
    task = tasks.get(task_name)
    size = task.default_size if size is None else size
    problem = task.build(size, seed=seed)
    settings = _settings(task, size, problem, kind)
    key = _key(task_name, size, seed, problem, settings)
    path = Path(cache_dir if cache_dir is not None else default_cache_dir()) / (
        f"{task_name}-{size}-seed{seed}-{settings['kind']}-{key[:16]}.pt"
    )
    if use_cache and path.exists():
        cached = _load(path, key)
        if cached is not None:
            return cached
    if use_cache and str(path) in _UNSTORED:
        return _UNSTORED[str(path)]
    start = time.perf_counter()
    if settings["kind"] != "dopri8":
        grad_y0, grad_params, error = _analytic(problem)
    else:
        grad_y0, grad_params, error = _dopri8(problem, settings)
    reference = Reference(
        task=task_name,
        size=size,
        seed=seed,
        grad_y0=grad_y0,
        grad_params=grad_params,
        kind=settings["kind"],
        error_estimate=error,
        settings=settings,
        key=key,
        compute_time_s=time.perf_counter() - start,
    )
    if use_cache:
        try:
            _store(path, reference)
        except OSError as exc:  # a full or read-only cache fails no case: the reference is kept here
            _UNSTORED[str(path)] = reference
            warnings.warn(
                f"reference {path.name} not cached ({exc.strerror or describe(exc)}: {path.parent}); "
                "kept in memory for this process",
                ReferenceCacheWarning,
                stacklevel=2,
            )
    return reference


#: References this process computed but could not store (a full or read-only cache directory).
_UNSTORED: dict[str, Reference] = {}


def _settings(task: tasks.Task, size: int, problem: Problem, kind: str | None = None) -> dict[str, Any]:
    exact = task.exact_gradient_kind if problem.exact_gradient is not None else None
    if kind is None:
        kind = exact or "dopri8"
    if kind not in REFERENCE_KINDS:
        raise InvalidInputError(f"unknown reference kind {kind!r}; valid: {', '.join(REFERENCE_KINDS)}")
    if kind != "dopri8":
        if exact is None:
            raise UnsupportedError(f"task {task.name!r} has no analytic gradient; use kind='dopri8'")
        if kind != exact:
            raise UnsupportedError(
                f"task {task.name!r}'s exact gradient is {exact!r}; valid: {exact}, dopri8"
            )
        return {"kind": kind, "dtype": "float64", "device": "cpu"}
    tol = float(task.reference_tolerance(size))
    return {
        "kind": "dopri8",
        "method": "naive",
        "solver": "dopri8",
        "rtol": tol,
        "atol": tol,
        "check_rtol": CHECK_FACTOR * tol,
        "check_atol": CHECK_FACTOR * tol,
        "options": "step_t=t",
        "dtype": "float64",
        "device": "cpu",
    }


def _analytic(problem: Problem) -> tuple[torch.Tensor, dict[str, torch.Tensor], float]:
    grad_y0, grad_params = problem.exact_gradient()
    grad_y0 = grad_y0.detach().to(dtype=torch.float64, device="cpu")
    grad_params = {n: g.detach().to(dtype=torch.float64, device="cpu") for n, g in grad_params.items()}
    error = problem.exact_gradient_error
    return grad_y0, grad_params, float(ANALYTIC_ERROR if error is None else error)


def _backprop(problem: Problem, rtol: float, atol: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Gradient by autograd through torchdiffeq's dopri8, stepping onto every output time.

    ``step_t = t`` makes every output time a step end: dopri8's dense output is only fourth
    order, and interpolating with it would limit the reference to about 1e-7 whatever the
    tolerance.
    """
    params = dict(problem.func.named_parameters())
    y0 = problem.y0.detach().clone().requires_grad_(True)
    options = {"step_t": problem.t}
    with torch.enable_grad():
        solution = methods.get("naive").odeint(
            problem.func, y0, problem.t, solver="dopri8", rtol=rtol, atol=atol, options=options
        )
        grads = torch.autograd.grad(problem.loss(solution), (y0, *params.values()), allow_unused=True)
    grads = [torch.zeros_like(x) if g is None else g.detach() for g, x in zip(grads, (y0, *params.values()))]
    return grads[0], dict(zip(params, grads[1:]))


def _dopri8(
    problem: Problem, settings: dict[str, Any]
) -> tuple[torch.Tensor, dict[str, torch.Tensor], float]:
    grad_y0, grad_params = _backprop(problem, settings["rtol"], settings["atol"])
    check_y0, check_params = _backprop(problem, settings["check_rtol"], settings["check_atol"])
    fine, loose = flatten(grad_y0, grad_params), flatten(check_y0, check_params)
    error = float((fine - loose).norm() / fine.norm().clamp_min(torch.finfo(torch.float64).tiny))
    return grad_y0, grad_params, error


def _key(task_name: str, size: int, seed: int, problem: Problem, settings: dict[str, Any]) -> str:
    """sha256 of everything the reference depends on.

    The problem enters through its tensors (y0, t, every parameter) and through probes of what
    its code computes: the field at two states and the loss with its gradient at a fixed
    pseudo-random trajectory, so editing a task's field, loss or targets changes the key even
    where the tensors do not.
    """
    digest = hashlib.sha256()
    header = {
        "format": FORMAT_VERSION,
        "task": task_name,
        "size": size,
        "seed": seed,
        "settings": settings,
        "exact_gradient_error": problem.exact_gradient_error,
        "func": f"{type(problem.func).__module__}.{type(problem.func).__qualname__}",
        "loss": f"{type(problem.loss).__module__}.{type(problem.loss).__qualname__}",
        "torch": torch.__version__,
        "torchdiffeq": version("torchdiffeq"),
        "machine": platform.machine(),
    }
    digest.update(json.dumps(header, sort_keys=True).encode())

    def add(label: str, x: torch.Tensor) -> None:
        x = x.detach().to(device="cpu").contiguous()
        digest.update(f"{label}:{x.dtype}:{tuple(x.shape)}:".encode())
        digest.update(x.numpy().tobytes())

    add("y0", problem.y0)
    add("t", problem.t)
    for name, p in problem.func.named_parameters():
        add(f"param.{name}", p)
    for name, b in problem.func.named_buffers():
        add(f"buffer.{name}", b)
    generator = torch.Generator(device="cpu").manual_seed(20240613)
    shape = (len(problem.t), *problem.y0.shape)
    probe = torch.randn(shape, generator=generator, dtype=torch.float64).to(problem.y0)
    with torch.enable_grad():
        probe.requires_grad_(True)
        value = problem.loss(probe)
        (grad,) = torch.autograd.grad(value, probe)
    add("loss.value", value)
    add("loss.grad", grad)
    with torch.no_grad():
        add("field.y0", problem.func(problem.t[0], problem.y0))
        add("field.probe", problem.func(problem.t[-1], probe[-1].detach()))
    return digest.hexdigest()


def _store(path: Path, reference: Reference) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT_VERSION,
        "task": reference.task,
        "size": reference.size,
        "seed": reference.seed,
        "grad_y0": reference.grad_y0,
        "grad_params": reference.grad_params,
        "kind": reference.kind,
        "error_estimate": reference.error_estimate,
        "settings": reference.settings,
        "key": reference.key,
        "compute_time_s": reference.compute_time_s,
        "content_sha256": reference.content_hash,
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(path: Path, key: str) -> Reference | None:
    """The cached reference at `path`, or None (with a warning) if it is unreadable, stale or
    its content no longer matches the hash recorded when it was written."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("format") != FORMAT_VERSION or payload.get("key") != key:
            raise ValueError("stale entry (format or key differs)")
        fields = ("task", "size", "seed", "grad_y0", "grad_params", "kind", "error_estimate")
        reference = Reference(
            **{name: payload[name] for name in fields},
            settings=payload["settings"],
            key=key,
            compute_time_s=payload["compute_time_s"],
        )
        stored = payload.get("content_sha256")
        if reference.content_hash != stored:
            raise ValueError(
                f"content check failed: recorded sha256 {str(stored)[:16]}…, "
                f"content now {reference.content_hash[:16]}… (corrupted on disk)"
            )
        return reference
    except Exception as exc:  # a corrupt or foreign file is recomputed, never trusted
        warnings.warn(f"cached reference {path.name} recomputed: {exc}", ReferenceCacheWarning, stacklevel=3)
        return None


class ReferenceCacheWarning(UserWarning):
    """A cached reference could not be trusted and was recomputed."""
