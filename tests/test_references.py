"""Reference gradients: accuracy against exact and independent answers, and the on-disk cache.

Measured at the smallest sizes, seed 0 (error estimate = relative difference of the dopri8
gradient at rtol = atol = 1e-12 and at 1e-10): spiral[1] 1.6e-10, lotka_volterra[5] 1.4e-10,
lorenz63[1] 5.8e-11, mlp[16] 9e-13; linear[2] is analytic, 4 d eps = 1.8e-15. The independent
check (ACA through odebench's own Runge-Kutta core, dopri5 at 1e-11, no step onto the output
times) agrees to 3e-11 .. 4e-10: its own error, which shrinks about 10x per decade of tolerance
toward the reference.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from odebench import references, tasks
from odebench.errors import InvalidInputError, UnsupportedError
from odebench.harness.executors import Local
from odebench.harness.sweep import run_sweep
from odebench.jobs.gradient import Case
from odebench.references import ReferenceCacheWarning, flatten, reference_gradient
from odebench.tasks.linear import exact_gradient
from tests.gradients import gradient, relative, smallest

NAMES = tasks.names()
CHECK_TOL = 1e-11


@pytest.mark.parametrize("name", NAMES)
def test_reference_shape_and_estimate(refs, name):
    ref = refs[name]
    problem = tasks.get(name).build(smallest(name))
    assert ref.task == name and ref.size == smallest(name) and ref.seed == 0
    assert ref.grad_y0.shape == problem.y0.shape and ref.grad_y0.dtype == torch.float64
    assert list(ref.grad_params) == [n for n, _ in problem.func.named_parameters()]
    for n, p in problem.func.named_parameters():
        assert ref.grad_params[n].shape == p.shape and ref.grad_params[n].dtype == torch.float64
    assert ref.flat.shape == (problem.y0.numel() + problem.n_params,)
    assert torch.isfinite(ref.flat).all() and ref.flat.norm() > 0
    assert ref.kind == ("analytic" if problem.exact_gradient is not None else "dopri8")
    assert 0 < ref.error_estimate < 1e-9  # measured: 1.8e-15 (linear) .. 1.6e-10 (spiral)
    assert ref.compute_time_s >= 0


@pytest.mark.parametrize("name", NAMES)
def test_reference_agrees_with_an_independent_solver(refs, name):
    """ACA (odebench's RK core) with dopri5 at 1e-11: the check's own error is at most ~40x its
    tolerance (measured, mlp), so agreement within 10x the estimate plus 100x the tolerance."""
    ref = refs[name]
    check = gradient(
        tasks.get(name).build(smallest(name)), "aca", solver="dopri5", rtol=CHECK_TOL, atol=CHECK_TOL
    )
    assert relative(check, ref.flat) < 10 * ref.error_estimate + 100 * CHECK_TOL


def test_linear_analytic_agrees_with_dopri8(refs, cache_dir):
    numeric = reference_gradient("linear", smallest("linear"), 0, cache_dir=cache_dir, kind="dopri8")
    assert numeric.kind == "dopri8" and refs["linear"].kind == "analytic"
    assert relative(numeric.flat, refs["linear"].flat) < 1e-8
    assert numeric.error_estimate < 1e-8
    assert numeric.key != refs["linear"].key


@pytest.mark.parametrize("size", [2, 8, 32])
def test_linear_analytic_estimate_bounds_its_round_off(size):
    """Two exact formulations (one matrix exponential per output time or per interval) differ
    only by round-off; the declared bound covers their disagreement."""
    problem = tasks.get("linear").build(size)
    direct = flatten(*exact_gradient(problem))
    sequential = flatten(*exact_gradient(problem, sequential=True))
    assert relative(sequential, direct) <= problem.exact_gradient_error


@pytest.mark.parametrize("name", ["linear", "mlp"])
def test_cache_hit_is_bitwise_identical_to_a_recompute(refs, cache_dir, name):
    size = smallest(name)
    files = sorted(cache_dir.glob(f"{name}-{size}-seed0-{refs[name].kind}-*.pt"))
    assert len(files) == 1
    hit = reference_gradient(name, size, 0, cache_dir=cache_dir)
    fresh = reference_gradient(name, size, 0, use_cache=False)
    for ref in (hit, fresh):
        assert torch.equal(ref.grad_y0, refs[name].grad_y0)
        assert ref.grad_params.keys() == refs[name].grad_params.keys()
        for n in ref.grad_params:
            assert torch.equal(ref.grad_params[n], refs[name].grad_params[n])
        assert ref.kind == refs[name].kind and ref.settings == refs[name].settings
        assert ref.error_estimate == refs[name].error_estimate and ref.key == refs[name].key
    assert hit.compute_time_s == refs[name].compute_time_s  # the original's time is kept
    assert not list(cache_dir.glob("*.tmp"))


def test_cache_key_depends_on_what_the_reference_depends_on():
    key = references.cache_key("spiral", 1, 0)
    assert key == references.cache_key("spiral", 1, 0)
    assert len({key, references.cache_key("spiral", 1, 1), references.cache_key("spiral", 2, 0)}) == 3
    assert key != references.cache_key("lotka_volterra", 5, 0)
    task = tasks.get("lotka_volterra")
    problem = task.build(5)
    settings = references._settings(task, 5, problem)
    base = references._key("lotka_volterra", 5, 0, problem, settings)
    assert base == references.cache_key("lotka_volterra", 5, 0)
    assert references._key("lotka_volterra", 5, 0, problem, {**settings, "rtol": 1e-11}) != base
    with torch.no_grad():
        problem.loss.target[0, 0, 0] += 1e-12  # the loss's data enters through the probes
    assert references._key("lotka_volterra", 5, 0, problem, settings) != base
    with torch.no_grad():
        problem.func.alpha += 1e-12
    changed = references._key("lotka_volterra", 5, 0, problem, settings)
    assert changed != base


def test_corrupt_cache_entry_is_recomputed(tmp_path):
    ref = reference_gradient("linear", 2, 0, cache_dir=tmp_path)
    (path,) = tmp_path.glob("linear-2-seed0-*.pt")
    path.write_bytes(b"not a torch file")
    with pytest.warns(ReferenceCacheWarning, match="recomputed"):
        again = reference_gradient("linear", 2, 0, cache_dir=tmp_path)
    assert torch.equal(again.flat, ref.flat)
    assert reference_gradient("linear", 2, 0, cache_dir=tmp_path).compute_time_s == again.compute_time_s


def flip_exponent_bit(path, tensor: torch.Tensor) -> None:
    """Flip the lowest exponent bit of the first float64 of `tensor` where the file stores it."""
    data = bytearray(path.read_bytes())
    at = data.find(tensor.detach().numpy().tobytes())
    assert at >= 0, "tensor bytes not found in the cache file"
    data[at + 6] ^= 0x10  # bit 52: the value doubles or halves
    path.write_bytes(bytes(data))


def test_a_flipped_bit_in_a_cached_reference_is_caught_and_recomputed(tmp_path):
    ref = reference_gradient("linear", 2, 0, cache_dir=tmp_path)
    (path,) = tmp_path.glob("linear-2-seed0-*.pt")
    flip_exponent_bit(path, ref.grad_y0)
    tampered = torch.load(path, weights_only=True)  # the file still loads...
    assert tampered["grad_y0"][0] == 2 * ref.grad_y0[0] or tampered["grad_y0"][0] == ref.grad_y0[0] / 2
    with pytest.warns(ReferenceCacheWarning, match="content check failed: recorded sha256 "):
        again = reference_gradient("linear", 2, 0, cache_dir=tmp_path)  # ...but is not trusted
    assert torch.equal(again.flat, ref.flat) and again.content_hash == ref.content_hash
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert reference_gradient("linear", 2, 0, cache_dir=tmp_path).content_hash == ref.content_hash


def test_the_warning_reaches_the_record_from_a_worker_and_names_the_hash(tmp_path):
    case = Case(task="linear", method="naive", size=2, repeats=1)
    ref = reference_gradient("linear", 2, 0, cache_dir=tmp_path)
    (path,) = tmp_path.glob("linear-2-seed0-*.pt")
    flip_exponent_bit(path, ref.grad_y0)
    result = run_sweep(
        [case], tmp_path / "r.jsonl", metadata={}, executor=Local(cache_dir=str(tmp_path)), progress=False
    )
    (record,) = result.records
    assert record.status == "ok" and record.reference_hash == ref.content_hash
    (warning,) = record.warnings
    assert warning.startswith(
        f"ReferenceCacheWarning: cached reference {path.name} recomputed: content check"
    )


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ODEBENCH_CACHE", str(tmp_path / "env"))
    assert references.default_cache_dir() == tmp_path / "env"
    reference_gradient("linear", 2, 1)
    assert len(list((tmp_path / "env").glob("linear-2-seed1-*.pt"))) == 1
    monkeypatch.delenv("ODEBENCH_CACHE")
    assert references.default_cache_dir().parts[-3:] == (".cache", "odebench", "references")


def test_flatten_order_and_bad_kinds():
    grad_y0 = torch.tensor([1.0, 2.0], dtype=torch.float32)
    flat = flatten(grad_y0, {"b": torch.tensor([[3.0]]), "a": torch.tensor(4.0)})
    assert flat.dtype == torch.float64 and flat.tolist() == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(UnsupportedError, match="no analytic gradient"):
        reference_gradient("spiral", 1, 0, kind="analytic", use_cache=False)
    with pytest.raises(InvalidInputError, match="valid: analytic, dopri8"):
        references.reference_settings("linear", kind="rk4")


def test_a_cache_that_cannot_be_written_fails_no_case(tmp_path):
    """A full or read-only cache directory: the case is scored, the reference kept in memory, one
    warning in the record (the cache's parent here is a file, so nothing can be created)."""
    from odebench.jobs.gradient import run_case

    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    record = run_case(
        Case(task="linear", method="aca", size=2, rtol=1e-5, repeats=1), cache_dir=blocked / "refs"
    )
    assert record.status == "ok", record.error
    assert record.grad_rel_error is not None
    assert any("ReferenceCacheWarning" in w and "kept in memory" in w for w in record.warnings)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = reference_gradient("linear", 2, cache_dir=blocked / "refs")
    assert not caught and again.kind == "analytic"
