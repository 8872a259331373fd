"""Speed verdicts from same-run time ratios, never from times of separate cases.

On this machine class the same work's time moves by up to 1.7x from one process to the next, so
the time of one case measured in its own process cannot rank two methods. What can is a ratio
case (`odebench.jobs.ratio`): the methods of one problem timed interleaved, round by round, in
one process. Two methods' ratio in a round is the quotient of their ratios to the baseline in
that round, so any pair of a case's methods is compared round by round, the baseline included.

A comparison is the median over rounds of that ratio with its interquartile range; rounds of
every ratio case of the same group (regime and setting; seeds and runs are replicates) are
pooled, and ``runs`` says how many cases they came from. A pair whose interquartile range covers
1, or whose median is within `RESOLUTION` of 1 (how far a same-run ratio moves between runs), is
a tie, and is called one. Files written before per-round ratios were recorded give each
method's quartiles against the baseline only; a pair of two non-baseline methods is then bounded
by the quotient of those quartiles (wider, never narrower, than the round-by-round range).
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from odebench.jobs.base import setting_label
from odebench.report.data import plain, regime_label
from odebench.report.style import method_order

FASTER, SLOWER, TIED = "faster", "slower", "tie"
#: How far the same pair's same-run ratio moves from one run to the next on this machine class:
#: over three runs of the quick suite (78 pairs of methods in 9 groups), the largest median over
#: the smallest was a median 1.03x, 1.07x at the 90th percentile and 1.15x at most. A pair closer
#: to 1 than this is a tie whatever its interquartile range, so that reruns call the same pairs.
RESOLUTION = 1.10


@dataclass(frozen=True)
class Speed:
    """One method's time over another's in the same rounds: median, quartiles, how many rounds
    (of how many ratio cases), and the verdict (``faster``, ``slower`` or ``tie``)."""

    median: float
    q25: float
    q75: float
    rounds: int
    runs: int

    @property
    def verdict(self) -> str:
        """``faster`` or ``slower`` when the interquartile range lies on one side of 1 and the
        median beyond `RESOLUTION`; else ``tie``."""
        if self.q75 < 1.0 and self.median * RESOLUTION < 1.0:
            return FASTER
        if self.q25 > 1.0 and self.median > RESOLUTION:
            return SLOWER
        return TIED

    def __str__(self) -> str:
        return f"{self.median:.2f}x [{self.q25:.2f}-{self.q75:.2f}]"


class GroupSpeed:
    """The same-run ratios of one group (one regime at one setting): every pair of its methods.

    Built from the rows of a ratio frame (`prepare_ratios`) of that group whose ratio case
    succeeded; methods a case left out (they failed) have no ratio and are not compared.
    """

    def __init__(self, rows: pd.DataFrame) -> None:
        #: Per ratio case: its baseline and, per method, its rounds (or quartiles) to it.
        self._cases: list[tuple[str, dict[str, _Ratio]]] = []
        self._compared: dict[tuple[str, str], Speed | None] = {}
        for _, case in rows.groupby("case_id", sort=False):
            baseline = str(case["baseline"].iloc[0])
            ratios = {}
            for row in case.to_dict("records"):
                ratio = _Ratio.of(row)
                if ratio is not None:
                    ratios[str(row["method"])] = ratio
            counts = {r.n for r in ratios.values()}
            rounds = {len(r.rounds) for r in ratios.values() if r.rounds is not None}
            ones = (1.0,) * rounds.pop() if len(rounds) == 1 else None
            ratios[baseline] = _Ratio(1.0, 1.0, 1.0, ones, max(counts, default=0))
            self._cases.append((baseline, ratios))

    @functools.cached_property
    def methods(self) -> list[str]:
        """The methods timed in this group (baselines included)."""
        return method_order({m for _, ratios in self._cases for m in ratios})

    def compare(self, a: str, b: str) -> Speed | None:
        """`a`'s time over `b`'s, from every ratio case that timed both (None: none did); each
        pair is pooled once (the tables, picks and Pareto set ask for the same pairs)."""
        if (a, b) not in self._compared:
            self._compared[a, b] = None if a == b else self._pool(a, b)
        return self._compared[a, b]

    def _pool(self, a: str, b: str) -> Speed | None:
        pooled: list[float] = []
        bounds: list[tuple[float, float, float]] = []
        runs = rounds = 0
        for _, ratios in self._cases:
            if a not in ratios or b not in ratios:
                continue
            runs += 1
            ra, rb = ratios[a], ratios[b]
            rounds += min(ra.n, rb.n)
            if ra.rounds is not None and rb.rounds is not None:
                pooled += [x / y for x, y in zip(ra.rounds, rb.rounds)]
            else:
                bounds.append((ra.median / rb.median, ra.q25 / rb.q75, ra.q75 / rb.q25))
        if not runs:
            return None
        if pooled and not bounds:
            q25, median, q75 = _quartiles(pooled)
            return Speed(median, q25, q75, rounds, runs)
        if pooled:  # old and new records of one group: the wider of the two readings
            q25, median, q75 = _quartiles(pooled)
            bounds.append((median, q25, q75))
        return Speed(
            statistics.median(m for m, _, _ in bounds),
            min(lo for _, lo, _ in bounds),
            max(hi for _, _, hi in bounds),
            rounds,
            runs,
        )

    def fastest(self, candidates: Iterable[str]) -> list[str]:
        """The candidates no other candidate is faster than: one method, or several tied ones.
        Candidates without a ratio against every other are left out (they cannot be ranked)."""
        names = [m for m in method_order(candidates) if m in self.methods]
        ranked = [m for m in names if all(self.compare(m, o) is not None for o in names if o != m)]
        return [m for m in ranked if not any(self.compare(m, o).verdict == SLOWER for o in ranked if o != m)]


@dataclass(frozen=True)
class _Ratio:
    """One method's ratio to its case's baseline: per round where recorded, quartiles, and the
    number of rounds behind them (``n``: the rounds recorded, or the case's setting in files
    written before rounds were kept)."""

    median: float
    q25: float
    q75: float
    rounds: tuple[float, ...] | None
    n: int

    @classmethod
    def of(cls, row: dict) -> _Ratio | None:
        median, q25, q75 = (plain(row.get(k)) for k in ("ratio", "ratio_q25", "ratio_q75"))
        if median is None or not math.isfinite(median) or median <= 0:
            return None
        rounds = row.get("ratio_rounds")
        rounds = tuple(float(x) for x in rounds) if isinstance(rounds, (list, tuple)) and rounds else None
        setting = plain(row.get("rounds"))
        n = len(rounds) if rounds is not None else int(setting or 0)
        return cls(float(median), float(q25 if q25 is not None else median), float(q75 or median), rounds, n)


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    q25, median, q75 = statistics.quantiles(values, n=4, method="inclusive")
    return q25, median, q75


def prepare_ratios(frame: pd.DataFrame | None) -> pd.DataFrame:
    """A ratio frame (`odebench.results.load_ratios`) with the gradient frame's ``regime`` and
    ``setting`` labels, so that its groups meet the measurements' groups."""
    if frame is None or frame.empty:
        return pd.DataFrame(columns=["regime", "setting", "case_id", "baseline", "method", "status"])
    df = frame.copy().reset_index(drop=True)
    rows = df.to_dict("records")
    df["regime"] = [regime_label(r) for r in rows]
    df["setting"] = [setting_label(plain(r["step_size"]), plain(r["rtol"]), plain(r["atol"])) for r in rows]
    return df


def speeds(ratios: pd.DataFrame) -> dict[tuple[str, str], GroupSpeed]:
    """Per group (regime, setting) of a prepared ratio frame: its `GroupSpeed` (ok cases only)."""
    ok = ratios[ratios["status"] == "ok"] if not ratios.empty else ratios
    return {key: GroupSpeed(rows) for key, rows in ok.groupby(["regime", "setting"], sort=False)}


def speed_table(
    ratios: pd.DataFrame, groups: dict[tuple[str, str], GroupSpeed] | None = None
) -> pd.DataFrame:
    """One row per group and timed method: its time over the baseline's (median over rounds with
    the interquartile range), rounds and cases behind it, and the verdict; a failed ratio case or
    a method it left out is a row with its status. `groups`: the frame's `speeds`, if made."""
    groups = speeds(ratios) if groups is None else groups
    rows = []
    columns = ["regime", "setting", "method", "vs", "time ratio [IQR]", "rounds", "runs", "verdict"]
    for (regime, setting), group in ratios.groupby(["regime", "setting"], sort=False):
        speed = groups.get((regime, setting)) or GroupSpeed(group.iloc[:0])
        for baseline in dict.fromkeys(group["baseline"]):
            mine = group[group["baseline"] == baseline]
            for method in method_order(mine["method"]):
                result = speed.compare(method, baseline)
                if result is None:
                    failed = mine[mine["method"] == method]
                    why = _why_missing(failed.iloc[-1].to_dict())
                    rows.append([regime, setting, method, baseline, "–", "–", "–", why])
                    continue
                verdict = result.verdict
                rows.append(
                    [regime, setting, method, baseline, str(result), result.rounds, result.runs, verdict]
                )
    return pd.DataFrame(rows, columns=columns)


def _why_missing(row: dict) -> str:
    if row.get("status") != "ok":
        return f"not timed ({row.get('status')})"
    failed = row.get("failed_methods") or {}
    message = failed.get(row.get("method"), "") if isinstance(failed, dict) else ""
    return f"not timed ({message.split(':')[0] or 'failed'})"


def fastest_text(speed: GroupSpeed | None, candidates: Iterable[str]) -> str:
    """The fastest of `candidates`: ``aca (0.80x [0.75-0.86] of symplectic)``, against the
    closest other, or ``aca, symplectic (a tie)``, or ``– (no same-run ratio)``."""
    if speed is None:
        return "– (no same-run ratio)"
    winners = speed.fastest(candidates)
    if not winners:
        return "– (no same-run ratio)"
    if len(winners) > 1:
        return f"{', '.join(winners)} (a tie)"
    others = [m for m in method_order(candidates) if m != winners[0] and speed.compare(winners[0], m)]
    if not others:
        return winners[0]
    runner_up = max(others, key=lambda m: speed.compare(winners[0], m).median)
    return f"{winners[0]} ({speed.compare(winners[0], runner_up)} of {runner_up})"


__all__ = [
    "FASTER",
    "RESOLUTION",
    "SLOWER",
    "TIED",
    "GroupSpeed",
    "Speed",
    "fastest_text",
    "prepare_ratios",
    "speed_table",
    "speeds",
]
