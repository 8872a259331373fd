"""Published claims about the gradient methods, checked on one run's data.

Every check compares only records that differ in the method alone (the same context: task,
size, solver, tolerance or step, dtype, device, seed), states how many such pairs it found (n)
and their spread, and gives a verdict:

* ``insufficient evidence`` below `MIN_CASES` matching cases: a verdict from two cases is a
  coin flip;
* ``holds`` when the effect is at least half the published one (or a 75% majority of cases);
* ``partly holds`` for a smaller effect in the published direction; ``does not hold`` otherwise;
* ``cannot test`` when the methods or the matching cases are missing.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from odebench.report.data import paired

HOLDS, PARTLY, FAILS = "holds", "partly holds", "does not hold"
INSUFFICIENT, UNTESTABLE = "insufficient evidence", "cannot test"
#: Fewest matching cases a verdict is drawn from.
MIN_CASES = 5
#: Forward steps from which a case counts as having "large step counts" (memory claim).
LARGE_STEPS = 50
#: Memory differences below this fraction are within the measurement's spread: not an order.
MEMORY_NOISE = 0.05
#: The discrete-exact methods must match autograd through the forward grid to this.
DISCRETE_EXACT = 1e-10


@dataclass(frozen=True)
class Finding:
    """A claim, who made it, what this run measured (with n), and whether the claim holds here."""

    claim: str
    source: str
    measured: str
    verdict: str
    n: int = 0


def check_all(ok: pd.DataFrame) -> list[Finding]:
    """Every published claim the report checks, in order."""
    return [
        seminorm_backward_nfe(ok),
        lower_error_than_adjoint(ok, "aca", "Zhuang et al. 2020 (ACA, ICML)"),
        lower_error_than_adjoint(ok, "symplectic", "Matsubara et al. 2021 (symplectic adjoint, NeurIPS)"),
        discrete_exact(ok),
        memory_order(ok),
    ]


def spread(values: pd.Series, pattern: str) -> str:
    """``median M (IQR a to b, range c to d)`` of `values`."""
    q = values.quantile([0.25, 0.5, 0.75])
    return (
        f"median {pattern.format(q[0.5])} (IQR {pattern.format(q[0.25])} to {pattern.format(q[0.75])}, "
        f"range {pattern.format(values.min())} to {pattern.format(values.max())})"
    )


def _by_solver(pairs: pd.DataFrame) -> str:
    solvers = pairs["solver"].value_counts()
    return ", ".join(f"{solver} {n}" for solver, n in solvers.items())


def _too_few(claim: str, source: str, n: int, what: str) -> Finding | None:
    if n < MIN_CASES:
        measured = f"only {n} matching {what} (a verdict needs at least {MIN_CASES})"
        return Finding(claim, source, measured, INSUFFICIENT, n)
    return None


def seminorm_backward_nfe(ok: pd.DataFrame) -> Finding:
    """Seminorm vs adjoint: relative reduction of backward NFE over matching cases."""
    claim = "The seminorm adjoint needs fewer backward function evaluations than the plain adjoint."
    source = "Kidger et al. 2020 (seminorm adjoint): median 40% fewer backward NFE"
    pairs = paired(ok, "seminorm", "adjoint", ["nfe_backward"]).dropna(
        subset=["nfe_backward_a", "nfe_backward_b"]
    )
    pairs = pairs[pairs["nfe_backward_b"] > 0]
    if pairs.empty:
        return Finding(claim, source, _why_untestable(ok, ("seminorm", "adjoint")), UNTESTABLE)
    cut = 1 - pairs["nfe_backward_a"] / pairs["nfe_backward_b"]
    too_few = _too_few(claim, source, len(cut), "cases")
    if too_few:
        return too_few
    measured = f"{spread(cut, '{:.0%}')} fewer backward NFE over n = {len(cut)} cases ({_by_solver(pairs)})"
    median = cut.median()
    verdict = HOLDS if median >= 0.2 else PARTLY if median > 0 else FAILS
    return Finding(claim, source, measured, verdict, len(cut))


def lower_error_than_adjoint(ok: pd.DataFrame, method: str, source: str) -> Finding:
    """Share of matching adaptive cases where `method`'s gradient error is below the adjoint's.

    Only adaptive solvers: "the same tolerance" means nothing on a fixed grid. Pairs where both
    errors are at the reference's resolution are left out: the reference cannot rank them.
    """
    claim = f"{method} has a lower gradient error than the adjoint at the same tolerance."
    cols = ["grad_rel_error", "at_reference_resolution"]
    pairs = paired(ok, method, "adjoint", cols).dropna(subset=["grad_rel_error_a", "grad_rel_error_b"])
    pairs = pairs[pairs["step_size"].isna()]
    unresolved = pairs["at_reference_resolution_a"] & pairs["at_reference_resolution_b"]
    pairs = pairs[~unresolved]
    if pairs.empty:
        why = _why_untestable(ok, (method, "adjoint"))
        if unresolved.any():
            why = f"in all {int(unresolved.sum())} matching cases both errors are at reference resolution"
        return Finding(claim, source, why, UNTESTABLE)
    too_few = _too_few(claim, source, len(pairs), "adaptive cases")
    if too_few:
        return too_few
    lower = pairs["grad_rel_error_a"] < pairs["grad_rel_error_b"]
    ratio = pairs["grad_rel_error_a"] / pairs["grad_rel_error_b"]
    measured = (
        f"lower in {int(lower.sum())} of n = {len(lower)} adaptive cases ({lower.mean():.0%}; "
        f"{_by_solver(pairs)}); error ratio {method}/adjoint {spread(ratio, '{:.2g}')}"
    )
    if unresolved.any():
        measured += f"; {int(unresolved.sum())} cases with both at reference resolution left out"
    share = lower.mean()
    verdict = HOLDS if share >= 0.75 else PARTLY if share > 0.5 else FAILS
    return Finding(claim, source, measured, verdict, len(lower))


def discrete_exact(ok: pd.DataFrame) -> Finding:
    """ACA and the symplectic adjoint reproduce autograd through the forward grid."""
    claim = (
        "ACA and the symplectic adjoint give the exact gradient of the discrete forward solve "
        f"(to {DISCRETE_EXACT:g})."
    )
    source = "Zhuang et al. 2020 (ACA); Matsubara et al. 2021 (symplectic adjoint)"
    rows = ok[ok["method"].isin(("aca", "symplectic")) & ok["grad_rel_error_discrete"].notna()]
    if rows.empty:
        return Finding(claim, source, _why_untestable(ok, ("aca", "symplectic")), UNTESTABLE)
    too_few = _too_few(claim, source, len(rows), "cases")
    if too_few:
        return too_few
    error = rows["grad_rel_error_discrete"]
    exact = error <= DISCRETE_EXACT
    measured = (
        f"within {DISCRETE_EXACT:g} in {int(exact.sum())} of n = {len(rows)} cases; discrete-exact error "
        f"{spread(error, '{:.1e}')}"
    )
    verdict = HOLDS if exact.all() else PARTLY if exact.mean() >= 0.75 else FAILS
    return Finding(claim, source, measured, verdict, len(rows))


def memory_order(ok: pd.DataFrame) -> Finding:
    """Peak memory symplectic < aca < naive in every context with many steps where all three ran.

    A difference below `MEMORY_NOISE` is within the measurement's spread and does not count as
    an order.
    """
    claim = (
        "At large step counts the symplectic adjoint uses less memory than ACA, which uses less than naive."
    )
    source = "Matsubara et al. 2021 (symplectic adjoint, NeurIPS)"
    order = ("symplectic", "aca", "naive")
    cols = ["peak_memory_bytes", "steps_accepted"]
    both = paired(ok, "symplectic", "aca", cols)
    third = ok.loc[ok["method"] == "naive", ["context", "peak_memory_bytes"]].drop_duplicates("context")
    triples = both.merge(third.rename(columns={"peak_memory_bytes": "peak_memory_bytes_c"}), on="context")
    triples = triples.dropna(subset=["peak_memory_bytes_a", "peak_memory_bytes_b", "peak_memory_bytes_c"])
    if triples.empty:
        return Finding(claim, source, _why_untestable(ok, order), UNTESTABLE)
    large = triples[triples["steps_accepted_b"] >= LARGE_STEPS]
    too_few = _too_few(claim, source, len(large), f"cases with at least {LARGE_STEPS} forward steps")
    if too_few:
        return too_few
    sym, aca, naive = (large[f"peak_memory_bytes_{s}"] for s in "abc")
    in_order = (sym < aca * (1 - MEMORY_NOISE)) & (aca < naive * (1 - MEMORY_NOISE))
    worst = large.assign(ratio=sym / aca).sort_values("ratio").iloc[-1]
    measured = (
        f"in order (each step below the next by more than {MEMORY_NOISE:.0%}) in {int(in_order.sum())} of "
        f"n = {len(large)} cases with at least {LARGE_STEPS} forward steps ({_by_solver(large)}); "
        f"symplectic/aca {spread(sym / aca, '{:.2f}')}, aca/naive {spread(aca / naive, '{:.2f}')}; "
        f"least favourable: {worst['problem']} {worst['solver']} {worst['setting']}, "
        f"symplectic {_mib(worst['peak_memory_bytes_a'])} vs aca {_mib(worst['peak_memory_bytes_b'])}"
    )
    share = in_order.mean()
    verdict = HOLDS if share >= 0.75 else PARTLY if share > 0.5 else FAILS
    return Finding(claim, source, measured, verdict, len(large))


def findings_table(findings: list[Finding]) -> pd.DataFrame:
    """The findings as a table of text."""
    return pd.DataFrame(
        [(f.claim, f.source, f.measured, f.n, f.verdict) for f in findings],
        columns=["claim", "published", "measured on this run", "n", "verdict"],
    )


def _why_untestable(ok: pd.DataFrame, methods: tuple[str, ...]) -> str:
    absent = [m for m in methods if m not in set(ok["method"])]
    if absent:
        return f"no successful record of {', '.join(absent)}"
    return f"no case where {', '.join(methods)} all succeeded with this metric measured"


def _mib(n: float) -> str:
    return f"{n / 2**20:.3g} MiB"
