"""The CI gate (`make gate`): the `gate` suite run through the worker, compared with the committed
baseline results file by the same engine and policy as `odebench compare`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torchdiffeq

from odebench import methods, suites
from odebench.comparison import compare, render_comparison
from odebench.environment import collect_metadata
from odebench.harness.sweep import run_sweep
from odebench.jobs.gradient import Case, run_case
from odebench.methods.adjoint import Adjoint
from odebench.results import load, load_ratios

BASELINE = Path(__file__).resolve().parents[1] / "results" / "baseline.jsonl"


@pytest.fixture(scope="module")
def committed():
    return load(BASELINE)


@pytest.fixture(scope="module")
def current(tmp_path_factory):
    """One run of the gate suite as `make gate` runs it (about 1.5 minutes on 2 cores)."""
    out = tmp_path_factory.mktemp("gate") / "gate.jsonl"
    run_sweep(suites.plan("gate").cases, out, metadata=collect_metadata(), progress=False)
    return out


def test_the_baseline_is_the_gate_suite_all_ok(committed):
    ratios = load_ratios(BASELINE)
    recorded = set(committed["case_id"]) | set(ratios["case_id"])
    assert recorded == {case.case_id for case in suites.plan("gate").cases}
    assert (committed["status"] == "ok").all() and (ratios["status"] == "ok").all()
    assert len(committed) == 59 and len(ratios) == 4 + 4 + 1  # ratio rows: one per method


@pytest.mark.slow  # about 50 s; the slow tier runs it in CI, right after `make gate` compares the same way
def test_the_gate_passes_on_the_committed_baseline(committed, current):
    result = compare(
        committed, load(current), base_ratios=load_ratios(BASELINE), new_ratios=load_ratios(current)
    )
    assert not result.regressed, render_comparison(result)
    # Every recorded case once: a ratio case counts once, whatever the methods it times.
    assert result.n_common == len(set(committed["case_id"]) | set(load_ratios(BASELINE)["case_id"]))


class LooseAdjoint(Adjoint):
    """The adjoint with its backward solve at 100x the forward tolerances: a real method change."""

    def _odeint(self, func, y0, t, *, solver, rtol, atol, options):
        return torchdiffeq.odeint_adjoint(
            func,
            y0,
            t,
            rtol=rtol,
            atol=atol,
            method=solver,
            options=options,
            adjoint_rtol=100 * rtol,
            adjoint_atol=100 * atol,
            adjoint_params=tuple(func.parameters()),
        )


def test_a_real_change_of_a_method_fails_naming_case_and_metrics(committed, monkeypatch, tmp_path):
    real_get = methods.get
    monkeypatch.setattr(methods, "get", lambda name: LooseAdjoint() if name == "adjoint" else real_get(name))
    record = run_case(Case(task="linear", method="adjoint", rtol=1e-6, repeats=1))
    base = committed[committed["case_id"] == record.case_id]
    result = compare(base, load_records_frame([record], tmp_path))
    assert result.regressed
    changed = {(d.label, d.metric): (d.base, d.new) for d in result.regressions + result.improvements}
    label = "linear[8]/adjoint/dopri5/tol=1e-06/float64/cpu"
    assert changed[(label, "nfe_backward")][0] == 138 and changed[(label, "nfe_backward")][1] < 138
    assert (label, "grad_rel_error") in {(d.label, d.metric) for d in result.regressions}


def load_records_frame(records, tmp_path):
    from odebench.results import ResultsWriter

    path = tmp_path / "new.jsonl"
    with ResultsWriter(path, metadata={}) as writer:
        for record in records:
            writer.write(record)
    return load(path)


def test_a_method_slower_relative_to_naive_fails_the_interleaved_ratio_gate(committed, monkeypatch):
    """ACA made to take twice its time (a sleep as long as its own work): its interleaved ratio
    to naive doubles, past the policy's factor, whatever the machine's load does to both."""
    import time

    from odebench.jobs.ratio import RatioCase, run_ratios
    from odebench.methods.aca import ACA

    class SlowACA(ACA):
        def _odeint(self, func, y0, t, **kw):
            started = time.perf_counter()
            solution = super()._odeint(func, y0, t, **kw)
            time.sleep(2 * (time.perf_counter() - started))  # its forward is about a third
            return solution

    real_get = methods.get
    monkeypatch.setattr(methods, "get", lambda name: SlowACA() if name == "aca" else real_get(name))
    record = run_ratios(RatioCase(task="mlp", methods=("aca",), rtol=1e-6))
    base = load_ratios(BASELINE)
    base = base[(base["task"] == "mlp") & (base["baseline"] == "naive") & (base["method"] == "aca")]
    new = base.assign(ratio=record.ratios["aca"])
    result = compare(committed.iloc[:0], committed.iloc[:0], base_ratios=base, new_ratios=new)
    (delta,) = result.regressions
    assert delta.metric == "interleaved_ratio" and delta.new > 1.3 * delta.base, render_comparison(result)
