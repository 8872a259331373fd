"""The side-by-side table of tests/perf/test_side_by_side.py, printed at the end of the session."""

from __future__ import annotations

import pytest

_ROWS = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def side_by_side_rows(request) -> list[dict]:
    return request.config.stash.setdefault(_ROWS, [])


def pytest_terminal_summary(terminalreporter, config) -> None:
    rows = config.stash.get(_ROWS, [])
    if not rows:
        return
    write = terminalreporter.write_line
    terminalreporter.section("side by side (median of per-round ratios, same process)")
    write(
        f"{'problem':9s} {'method':21s} {'median ms':>9s} {'/ naive':>8s} {'/ peer':>7s} "
        f"{'peer':21s} {'peak MiB':>8s} {'NFE fwd/bwd':>11s} {'grad diff':>9s}"
    )
    for r in rows:
        peer = "" if r["best_peer"] is None else r["best_peer"]
        to_peer = "" if r["ratio_to_peer"] is None else f"{r['ratio_to_peer']:.3f}"
        peak = "" if r["peak_mib"] is None else f"{r['peak_mib']:.3f}"
        nfe = "{}/{}".format(*r["nfe_forward_backward"])
        write(
            f"{r['problem']:9s} {r['method']:21s} {r['median_ms']:9.2f} {r['ratio_to_naive']:8.3f} "
            f"{to_peer:>7s} {peer:21s} {peak:>8s} {nfe:>11s} {r['grad_rel_diff_to_naive']:9.1e}"
        )
