"""The report's view of training runs: like-for-like groups, final metrics, and the claims.

A *group* is one study solved one way (solver and tolerance or step, dtype, device, iterations);
inside it the runs differ in the method and the seed, and seeds are replicates. A *pair*
compares two runs that differ in one thing alone: the method (or, for the SONODE claim, the
model, i.e. the study), everything else equal, the seed included. As for gradient findings,
a claim needs `MIN_CASES` pairs for a verdict, states n and the spread, and otherwise says
"insufficient evidence".

Times of training runs come from different processes, where the same work's time moves by up
to 1.7x on this machine class: time ratios are reported with their spread, and claims about
training cost are judged on the deterministic evaluation counts, with the time beside them.
"""

from __future__ import annotations

import pandas as pd

from odebench.methods import BASELINE
from odebench.record import setting_label
from odebench.report.findings import (
    FAILS,
    HOLDS,
    INSUFFICIENT,
    MIN_CASES,
    PARTLY,
    UNTESTABLE,
    Finding,
    spread,
)
from odebench.report.style import method_order
from odebench.report.text import fmt

#: What must match for two runs to be compared (the method or the study varies on top).
PAIR_KEYS = ("solver", "rtol", "atol", "step_size", "dtype", "device", "seed", "iterations", "max_seconds")


def prepare_training(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of a `load_training` frame with ``setting``, ``group`` and ``pair`` columns."""
    df = frame.copy().reset_index(drop=True)
    for col in ("rtol", "atol", "step_size", "max_seconds"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    df["setting"] = [
        setting_label(None if pd.isna(h) else h, None if pd.isna(r) else r, None if pd.isna(a) else a)
        for h, r, a in zip(df["step_size"], df["rtol"], df["atol"])
    ]
    df["group"] = [
        f"{study} · {solver} · {setting} · {dtype} · {device} · it={iterations}"
        for study, solver, setting, dtype, device, iterations in zip(
            df["study"], df["solver"], df["setting"], df["dtype"], df["device"], df["iterations"]
        )
    ]
    df["pair"] = ["|".join(repr(v) for v in row) for row in df[list(PAIR_KEYS)].itertuples(index=False)]
    return df


#: Columns of the final-metrics table: field, heading, format, lower is better.
FINAL = (
    ("heldout", "held-out", "{:.3g}"),
    ("parameter_error", "parameter error", "{:.2e}"),
    ("final_loss", "final loss", "{:.3g}"),
    ("train_time_s", "train time [s]", "{:.3g}"),
    ("time_to_target_s", "time to target [s]", "{:.3g}"),
    ("nfe_backward_total", "backward NFE", "{:.4g}"),
    ("grad_rel_error_median", "gradient error", "{:.1e}"),
)


def final_metrics_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per group and method: finished/all runs, medians over seeds, and in brackets the median
    over seeds of the ratio to naive's run with the same seed."""
    rows = []
    for group, runs in df.groupby("group", sort=False):
        naive = runs[(runs["method"] == BASELINE) & (runs["status"] == "ok")].set_index("pair")
        for method in method_order(runs["method"]):
            mine = runs[runs["method"] == method]
            ok = mine[mine["status"] == "ok"]
            line = {"group": group, "method": method, "ok": f"{len(ok)}/{len(mine)}"}
            for column, head, pattern in FINAL:
                values = pd.to_numeric(ok[column], errors="coerce").dropna()
                text = fmt(values.median() if len(values) else None, pattern)
                if method != BASELINE and len(values) and column in naive.columns:
                    ratios = _ratios(ok.set_index("pair")[column], naive[column])
                    if len(ratios):
                        text += f" ({ratios.median():.2g}x)"
                line[head] = text
            rows.append(line)
    return pd.DataFrame(rows, columns=["group", "method", "ok", *(h for _, h, _ in FINAL)])


def _ratios(mine: pd.Series, base: pd.Series) -> pd.Series:
    mine, base = pd.to_numeric(mine, errors="coerce"), pd.to_numeric(base, errors="coerce")
    joined = pd.concat([mine.rename("a"), base.rename("b")], axis=1, join="inner").dropna()
    joined = joined[joined["b"] > 0]
    return joined["a"] / joined["b"]


def method_pairs(df: pd.DataFrame, a: str, b: str, column: str, studies: tuple[str, ...] | None = None):
    """Finished runs of methods `a` and `b` that differ in the method alone: ``(study, a, b)``."""
    ok = df[df["status"] == "ok"]
    if studies is not None:
        ok = ok[ok["study"].isin(studies)]
    key = ok["study"] + "|" + ok["pair"]
    left = ok[ok["method"] == a].assign(_k=key).set_index("_k")[["study", column]]
    right = ok[ok["method"] == b].assign(_k=key).set_index("_k")[[column]]
    joined = left.join(right, suffixes=("_a", "_b"), how="inner")
    joined[[f"{column}_a", f"{column}_b"]] = joined[[f"{column}_a", f"{column}_b"]].apply(
        pd.to_numeric, errors="coerce"
    )
    return joined.dropna(subset=[f"{column}_a", f"{column}_b"])


def _verdict_from_share(share: float) -> str:
    return HOLDS if share >= 0.75 else PARTLY if share > 0.5 else FAILS


def seminorm_training(df: pd.DataFrame) -> Finding:
    """Seminorm vs adjoint over whole training runs: total backward NFE and training time."""
    claim = "Over training, the seminorm adjoint needs fewer backward evaluations than the adjoint."
    source = (
        "Kidger, Chen & Lyons 2021: median 40% (up to 62%) fewer backward NFE; training time roughly halved"
    )
    pairs = method_pairs(df, "seminorm", "adjoint", "nfe_backward_total")
    if len(pairs) < MIN_CASES:
        return _short(claim, source, pairs, "seminorm/adjoint run pairs")
    cut = 1 - pairs["nfe_backward_total_a"] / pairs["nfe_backward_total_b"]
    times = method_pairs(df, "seminorm", "adjoint", "train_time_s")
    ratio = times["train_time_s_a"] / times["train_time_s_b"]
    measured = (
        f"backward NFE {spread(cut, '{:.0%}')} fewer over n = {len(cut)} run pairs "
        f"({_studies(pairs)}); training time seminorm/adjoint {spread(ratio, '{:.2f}')}"
    )
    median = cut.median()
    verdict = HOLDS if median >= 0.2 else PARTLY if median > 0 else FAILS
    return Finding(claim, source, measured, verdict, len(cut))


def aca_classification(df: pd.DataFrame, study: str = "digits_classification") -> Finding:
    """ACA vs the adjoint and naive on image classification: held-out error and time to target."""
    claim = (
        "On image classification ACA reaches a lower error rate in less training time than the adjoint "
        "and naive."
    )
    source = "Zhuang et al. 2020 (ACA): half the error rate in half the training time (CIFAR-10)"
    parts, shares, n = [], [], 0
    for other in ("adjoint", BASELINE):
        errors = method_pairs(df, "aca", other, "heldout", (study,))
        times = method_pairs(df, "aca", other, "time_to_target_s", (study,))
        n = max(n, len(errors))
        if len(errors) < MIN_CASES:
            continue
        lower = errors["heldout_a"] < errors["heldout_b"]
        faster = times["time_to_target_s_a"] < times["time_to_target_s_b"]
        shares += [lower.mean(), faster.mean() if len(times) else 0.0]
        speedup = times["time_to_target_s_a"] / times["time_to_target_s_b"]
        time_text = (
            f"time to target aca/{other} {spread(speedup, '{:.2f}')}"
            if len(times)
            else "time to target: not reached by both"
        )
        parts.append(
            f"vs {other}: error lower in {int(lower.sum())} of n = {len(errors)} "
            f"(ratio {spread(errors['heldout_a'] / errors['heldout_b'], '{:.2f}')}); {time_text}"
        )
    if not parts:
        return _short(
            claim, source, method_pairs(df, "aca", "adjoint", "heldout", (study,)), f"{study} run pairs"
        )
    return Finding(claim, source, "; ".join(parts), _verdict_from_share(min(shares)), n)


def three_body_masses(df: pd.DataFrame, study: str = "three_body_masses") -> Finding:
    """ACA's learnt masses vs the adjoint's and naive's, seed by seed."""
    claim = "ACA recovers the three-body masses more accurately than the adjoint and naive."
    source = "Zhuang et al. 2020 (ACA): three-body experiment (per-method errors shown as a figure)"
    parts, shares, n = [], [], 0
    for other in ("adjoint", BASELINE):
        pairs = method_pairs(df, "aca", other, "parameter_error", (study,))
        n = max(n, len(pairs))
        if len(pairs) < MIN_CASES:
            continue
        lower = pairs["parameter_error_a"] < pairs["parameter_error_b"]
        ratio = pairs["parameter_error_a"] / pairs["parameter_error_b"]
        shares.append(lower.mean())
        parts.append(
            f"vs {other}: lower in {int(lower.sum())} of n = {len(pairs)} (ratio {spread(ratio, '{:.3g}')})"
        )
    if not parts:
        return _short(
            claim,
            source,
            method_pairs(df, "aca", "adjoint", "parameter_error", (study,)),
            f"{study} run pairs",
        )
    return Finding(claim, source, "; ".join(parts), _verdict_from_share(min(shares)), n)


def sonode_vs_anode(df: pd.DataFrame) -> Finding:
    """SONODE vs ANODE on the damped oscillators: runs that differ in the model alone."""
    claim = "SONODE fits the damped oscillators better than ANODE."
    source = "Norcliffe et al. 2020 (SONODE): lower loss, reached faster"
    ok = df[(df["status"] == "ok") & df["study"].isin(("oscillators_sonode", "oscillators_anode"))]
    key = ok["method"] + "|" + ok["pair"]
    sonode = ok[ok["study"] == "oscillators_sonode"].assign(_k=key).set_index("_k")["heldout"]
    anode = ok[ok["study"] == "oscillators_anode"].assign(_k=key).set_index("_k")["heldout"]
    joined = pd.concat([sonode.rename("a"), anode.rename("b")], axis=1, join="inner").dropna()
    if len(joined) < MIN_CASES:
        what = "SONODE/ANODE run pairs (same method, solver, seed)"
        return Finding(
            claim,
            source,
            f"only {len(joined)} {what} (a verdict needs at least {MIN_CASES})",
            INSUFFICIENT if len(joined) else UNTESTABLE,
            len(joined),
        )
    lower = joined["a"] < joined["b"]
    measured = (
        f"held-out MSE lower in {int(lower.sum())} of n = {len(joined)} run pairs; "
        f"ratio sonode/anode {spread(joined['a'] / joined['b'], '{:.2g}')}"
    )
    return Finding(claim, source, measured, _verdict_from_share(lower.mean()), len(joined))


def lorenz_steps(df: pd.DataFrame, curves: pd.DataFrame, study: str = "lorenz63_one_step") -> Finding:
    """Steps per prediction of the adaptive solver across training, per tolerance."""
    claim = (
        "Trained naively with an adaptive low-order solver, the solver takes about one step per "
        "prediction until the tolerance is tightened."
    )
    source = "Allauzen, Dardis & Plath 2022: one step per prediction at loose tolerances (0.1, 0.05)"
    runs = curves[(curves["study"] == study) & (curves["status"] == "ok")]
    if runs.empty:
        return Finding(claim, source, f"no finished run of {study}", UNTESTABLE)
    per_run = (
        runs.assign(per=runs["steps_accepted"] / runs["solves"]).groupby(["case_id", "rtol"])["per"].median()
    )
    by_tol = per_run.groupby(level="rtol")
    if per_run.groupby(level="rtol").size().min() < MIN_CASES or len(by_tol) < 2:
        return Finding(
            claim,
            source,
            f"only {len(per_run)} runs over {len(by_tol)} tolerance(s) "
            f"(a verdict needs at least {MIN_CASES} runs at each of two)",
            INSUFFICIENT,
            len(per_run),
        )
    medians = by_tol.median()
    loosest, tightest = medians.index.max(), medians.index.min()
    measured = "; ".join(
        f"rtol {tol:g}: median {value:.2f} steps per prediction (n = {by_tol.size()[tol]} runs)"
        for tol, value in medians.items()
    )
    one_step = medians[loosest] <= 1.5
    tightened = medians[tightest] > 1.5 * medians[loosest]
    verdict = HOLDS if one_step and tightened else PARTLY if one_step or tightened else FAILS
    return Finding(claim, source, measured, verdict, len(per_run))


def _short(claim: str, source: str, pairs: pd.DataFrame, what: str) -> Finding:
    if pairs.empty:
        return Finding(claim, source, f"no {what}: the methods or runs are missing", UNTESTABLE)
    return Finding(
        claim,
        source,
        f"only {len(pairs)} {what} (a verdict needs at least {MIN_CASES})",
        INSUFFICIENT,
        len(pairs),
    )


def _studies(pairs: pd.DataFrame) -> str:
    return ", ".join(f"{s} {n}" for s, n in pairs["study"].value_counts().items())


def training_findings(df: pd.DataFrame, curves: pd.DataFrame) -> list[Finding]:
    """Every training claim the report checks, in order."""
    return [
        aca_classification(df),
        three_body_masses(df),
        seminorm_training(df),
        sonode_vs_anode(df),
        lorenz_steps(df, curves),
    ]


__all__ = ["final_metrics_table", "prepare_training", "training_findings"]
