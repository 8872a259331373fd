"""Published claims about the gradient methods, checked on one run's data.

Each check returns a `Finding` with the figure measured here and a verdict; a claim the data
cannot test (a method or the matching cases missing) says so rather than guessing.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from odebench.report.data import paired

HOLDS, PARTLY, FAILS, UNTESTABLE = "holds", "partly holds", "does not hold", "cannot test"


@dataclass(frozen=True)
class Finding:
    """A claim, who made it, what this run measured, and whether the claim holds here."""

    claim: str
    source: str
    measured: str
    verdict: str


def check_all(ok: pd.DataFrame) -> list[Finding]:
    """Every published claim the report checks, in order."""
    return [
        seminorm_backward_nfe(ok),
        lower_error_than_adjoint(ok, "aca", "Zhuang et al. 2020 (ACA, ICML)"),
        lower_error_than_adjoint(ok, "symplectic", "Matsubara et al. 2021 (symplectic adjoint, NeurIPS)"),
        memory_order(ok),
    ]


def seminorm_backward_nfe(ok: pd.DataFrame) -> Finding:
    """Seminorm vs adjoint: median relative reduction of backward NFE over matching cases."""
    claim = "The seminorm adjoint needs fewer backward function evaluations than the plain adjoint."
    source = "Kidger et al. 2020 (seminorm adjoint): median 40% fewer backward NFE"
    pairs = paired(ok, "seminorm", "adjoint", ["nfe_backward"]).dropna(
        subset=["nfe_backward_a", "nfe_backward_b"]
    )
    pairs = pairs[pairs["nfe_backward_b"] > 0]
    if pairs.empty:
        return Finding(claim, source, _why_untestable(ok, ("seminorm", "adjoint")), UNTESTABLE)
    cut = 1 - pairs["nfe_backward_a"] / pairs["nfe_backward_b"]
    measured = (
        f"median {cut.median():.0%} fewer backward NFE over {len(cut)} matching cases "
        f"(range {cut.min():.0%} to {cut.max():.0%})"
    )
    # "holds" needs at least half the published effect; a smaller cut only partly confirms it.
    median = cut.median()
    verdict = HOLDS if median >= 0.2 else PARTLY if median > 0 else FAILS
    return Finding(claim, source, measured, verdict)


def lower_error_than_adjoint(ok: pd.DataFrame, method: str, source: str) -> Finding:
    """Fraction of matching cases where `method`'s gradient error is below the adjoint's.

    Pairs where both errors are at the reference's resolution are left out: the reference
    cannot tell them apart.
    """
    claim = f"{method} has a lower gradient error than the adjoint at the same tolerance."
    cols = ["grad_rel_error", "at_reference_resolution"]
    pairs = paired(ok, method, "adjoint", cols).dropna(subset=["grad_rel_error_a", "grad_rel_error_b"])
    unresolved = pairs["at_reference_resolution_a"] & pairs["at_reference_resolution_b"]
    pairs = pairs[~unresolved]
    if pairs.empty:
        why = _why_untestable(ok, (method, "adjoint"))
        if unresolved.any():
            n = int(unresolved.sum())
            why = f"cannot test: in all {n} matching cases both errors are at reference resolution"
        return Finding(claim, source, why, UNTESTABLE)
    lower = pairs["grad_rel_error_a"] < pairs["grad_rel_error_b"]
    ratio = (pairs["grad_rel_error_a"] / pairs["grad_rel_error_b"]).median()
    measured = (
        f"lower in {int(lower.sum())} of {len(lower)} matching cases ({lower.mean():.0%}); "
        f"median error ratio {method}/adjoint {ratio:.2g}"
    )
    if unresolved.any():
        measured += f"; {int(unresolved.sum())} cases with both at reference resolution left out"
    # A clear majority holds; a slim one (a coin flip on few cases) only partly.
    share = lower.mean()
    verdict = HOLDS if share >= 0.75 else PARTLY if share > 0.5 else FAILS
    return Finding(claim, source, measured, verdict)


def memory_order(ok: pd.DataFrame) -> Finding:
    """Peak memory symplectic < aca < naive at each task's largest size and smallest tolerance.

    Only contexts where all three methods succeeded are compared; per task the largest such
    size, then the smallest rtol there.
    """
    claim = (
        "At large step counts the symplectic adjoint uses less memory than ACA, which uses less than naive."
    )
    source = "Matsubara et al. 2021 (symplectic adjoint, NeurIPS)"
    order = ("symplectic", "aca", "naive")
    cols = ["peak_memory_bytes"]
    both = paired(ok, "symplectic", "aca", cols)
    third = ok.loc[ok["method"] == "naive", ["context", "peak_memory_bytes"]].drop_duplicates("context")
    triples = both.merge(third.rename(columns={"peak_memory_bytes": "peak_memory_bytes_c"}), on="context")
    triples = triples.dropna(subset=["peak_memory_bytes_a", "peak_memory_bytes_b", "peak_memory_bytes_c"])
    if triples.empty:
        return Finding(claim, source, _why_untestable(ok, order), UNTESTABLE)
    checked, holding = [], 0
    for _, group in triples.groupby("task"):
        largest = group[group["size"] == group["size"].max()] if group["size"].notna().any() else group
        tightest = largest[largest["rtol"] == largest["rtol"].min()]
        for row in tightest.itertuples(index=False):
            sym, aca, naive = row.peak_memory_bytes_a, row.peak_memory_bytes_b, row.peak_memory_bytes_c
            ok_here = sym < aca < naive
            holding += ok_here
            checked.append(
                f"{row.problem} at {_setting(row)}: symplectic {_mib(sym)}, aca {_mib(aca)}, "
                f"naive {_mib(naive)} ({'in order' if ok_here else 'not in order'})"
            )
    verdict = HOLDS if holding == len(checked) else PARTLY if holding else FAILS
    measured = f"in order in {holding} of {len(checked)} comparison(s): " + "; ".join(checked)
    return Finding(claim, source, measured, verdict)


def _setting(row) -> str:
    """``rk4 h=0.01`` for a fixed-step case, ``rtol=1e-06`` for an adaptive one."""
    if pd.notna(row.step_size):
        return f"{row.solver} h={row.step_size:g}"
    return f"rtol={row.rtol:g}"


def findings_table(findings: list[Finding]) -> pd.DataFrame:
    """The findings as a table of text."""
    return pd.DataFrame(
        [(f.claim, f.source, f.measured, f.verdict) for f in findings],
        columns=["claim", "published", "measured on this run", "verdict"],
    )


def _why_untestable(ok: pd.DataFrame, methods: tuple[str, ...]) -> str:
    absent = [m for m in methods if m not in set(ok["method"])]
    if absent:
        return f"cannot test: no successful record of {', '.join(absent)}"
    return f"cannot test: no case where {', '.join(methods)} all succeeded with this metric measured"


def _mib(n: float) -> str:
    return f"{n / 2**20:.3g} MiB"
