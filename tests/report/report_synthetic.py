"""A synthetic results frame with planted effects, built from hand-made Records.

Planted: seminorm needs exactly 40% fewer backward NFE than the adjoint; ACA's error is below
the adjoint's in every case, symplectic's in 6 of 8; ACA and symplectic are discrete-exact;
peak memory grows like size for naive (slope 1), is flat for the adjoints (slope 0), and is
ordered symplectic < aca < naive in every case; 6 of the 8 contexts take at least 50 forward
steps. A peer that only fails and one timed-out adjoint case are added.
"""

from __future__ import annotations

import pandas as pd

from odebench.jobs.gradient import Case, Record

METHODS = ("naive", "adjoint", "seminorm", "aca", "symplectic")
TASKS = ("linear", "spiral")
RTOLS = (1e-4, 1e-6)
SIZES = (8, 32)
META = {
    "meta_git_commit": "abc1234",
    "meta_odebench_version": "0.1.0",
    "meta_run_id": "run-1",
    "meta_hostname": "testhost",
    "meta_started_at": "2024-01-01T00:00:00Z",
    "meta_command": "odebench run --suite synthetic",
    "source": "results/synthetic.jsonl",
}
COMMAND = "odebench report results/synthetic.jsonl --out report"
SOURCES = ["results/synthetic.jsonl"]


def measured(method: str, task: str, rtol: float, size: int) -> dict:
    """The planted measurements of one successful case."""
    k = 1.0 if rtol == 1e-4 else 2.0  # tighter tolerance: twice the steps
    t = 1.0 if task == "linear" else 1.5
    adjoint_bwd = 200 * k * t
    error = {
        "naive": 5e-13,
        "adjoint": rtol * 10,
        "seminorm": rtol * 12,
        "aca": rtol * 0.1,
        "symplectic": rtol * (20 if (size == 8 and rtol == 1e-4) else 0.1),
    }[method]
    memory = {
        "naive": 1e5 * size * k,
        "adjoint": 2e5,
        "seminorm": 2e5,
        "aca": 3e4 * size**0.5 * k,
        "symplectic": 2e4 * size**0.2,
    }[method]
    nfe_bwd = {"naive": 0, "adjoint": adjoint_bwd, "seminorm": 0.6 * adjoint_bwd}.get(method, 100 * k * t)
    fwd = {"naive": 0.2, "adjoint": 0.1, "seminorm": 0.1, "aca": 0.15, "symplectic": 0.12}[method] * k * t
    bwd = {"naive": 0.3, "adjoint": 0.5, "seminorm": 0.35, "aca": 0.25, "symplectic": 0.4}[method] * k * t
    return {
        "grad_rel_error": error,
        "reference_error": 1e-13,
        "at_reference_resolution": error < 1e-12,
        "reference_kind": "float64",
        "nfe_forward": int(100 * k * t),
        "nfe_backward": int(nfe_bwd),
        "vjp_backward": int(100 * k * t),
        "steps_accepted": int(40 * k * t),
        "grad_rel_error_discrete": 2e-16 if method in ("aca", "symplectic") else 1e-9,
        "steps_rejected": 2,
        "time_forward_s": fwd,
        "time_backward_s": bwd,
        "peak_memory_bytes": int(memory),
        "method_backend": "odebench",
    }


def synthetic_records(methods=METHODS, failures: bool = True) -> list[Record]:
    records = []
    for task in TASKS:
        for size in SIZES:
            for rtol in RTOLS:
                for method in methods:
                    case = Case(task=task, method=method, rtol=rtol, atol=rtol * 1e-2, size=size)
                    records.append(Record(case, case.case_id, "ok", **measured(method, task, rtol, size)))
    if failures:
        for task in TASKS:
            case = Case(task=task, method="aca@torchdiffeqpack", rtol=1e-6, atol=1e-8, size=8)
            records.append(Record.failed(case, "error", "ImportError: TorchDiffEqPack | not installed\nmore"))
        case = Case(task="spiral", method="adjoint", rtol=1e-8, atol=1e-10, size=32)
        records.append(Record.failed(case, "timeout", "timed out after 600 s"))
    return records


def frame_of(records: list[Record], **meta) -> pd.DataFrame:
    return pd.DataFrame([r.to_dict() | META | meta for r in records])


#: Planted same-run ratios to naive per round: adjoint slower, seminorm a tie (its rounds
#: straddle 1), aca and symplectic faster than naive and tied with each other (their per-round
#: quotient straddles 1), so a tie on time falls to symplectic's lower memory.
_JITTER = (0.97, 1.0, 1.03, 0.98, 1.02, 0.99, 1.01, 0.96, 1.04)
PLANTED = {
    "adjoint": [1.2 * f for f in _JITTER],
    "seminorm": [0.9 * f for f in (0.9, 1.2, 0.95, 1.15, 1.0, 1.18, 0.92, 1.12, 1.05)],
    "aca": [0.8 * f for f in _JITTER],
    "symplectic": [0.8 * f for f in reversed(_JITTER)],
}


def synthetic_ratios(rounds: bool = True) -> list:
    """One ratio record per context of `synthetic_records` (`PLANTED`); with `rounds` False,
    records as files written before per-round ratios were kept (quartiles only)."""
    from odebench.jobs.ratio import RatioCase, RatioRecord, ratio_fields

    records = []
    for task in TASKS:
        for size in SIZES:
            for rtol in RTOLS:
                case = RatioCase(task=task, methods=METHODS[1:], rtol=rtol, atol=rtol * 1e-2, size=size)
                fields = ratio_fields(PLANTED)
                if not rounds:
                    fields["round_ratios"] = {}
                records.append(RatioRecord(case, case.case_id, "ok", **fields, baseline_time_s=0.5))
    return records


def ratio_frame_of(records: list) -> pd.DataFrame:
    """The ratio frame `odebench.results.load_ratios` gives for `records`."""
    from odebench.jobs.ratio import frame_rows

    return pd.DataFrame([row for r in records for row in frame_rows(r.to_dict() | META)])
