"""`write_report`: a results frame in, report.md, report.html and figures/ out."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from odebench.errors import InvalidInputError
from odebench.report import plots
from odebench.report.claims import CONFIDENCE, MIN_PAIRS, findings_table, gradient_findings, training_findings
from odebench.report.data import ok_rows, prepare
from odebench.report.depth import depth_table
from odebench.report.document import Block, Document, Section, Table
from odebench.report.frameworks import framework_table
from odebench.report.html import to_html
from odebench.report.markdown import to_markdown
from odebench.report.recommend import NEAR_BEST, TIE, wins_summary, wins_table
from odebench.report.size import ordering_table, size_tables
from odebench.report.speed import RESOLUTION, prepare_ratios, speed_table, speeds
from odebench.report.style import method_order, method_styles
from odebench.report.tables import failures_table, measurements_table, metadata_table, warnings_table
from odebench.report.training import final_metrics_table, prepare_training


def write_report(
    frame: pd.DataFrame,
    out_dir: Path,
    *,
    command: str,
    sources: list[str],
    max_memory_mib: float | None = None,
    max_error: float | None = None,
    training: pd.DataFrame | None = None,
    curves: pd.DataFrame | None = None,
    ratios: pd.DataFrame | None = None,
) -> Path:
    """Write ``report.md``, ``report.html`` and ``figures/*.png|svg`` into `out_dir`.

    Args:
        frame: one row per Record (`odebench.jobs.gradient.RECORD_FIELDS` plus ``meta_*`` and
            ``source`` columns), failed records included (`odebench.results.load`).
        training, curves: training runs and their curves (`odebench.results.load_training`,
            `load_curves`), for the training sections; None or empty: none.
        ratios: same-run time ratios (`odebench.results.load_ratios`), the only source of the
            report's speed verdicts; None or empty: none (the report then ranks no time).
        out_dir: the folder to write into (created if needed; figures it held are replaced).
            The report is written into a temporary sibling first and moved in when complete, so
            an interrupted report (Ctrl-C) leaves `out_dir` as it was.
        command: the command that regenerates the report, printed once under the title.
        sources: the results files the frame was loaded from, printed once under the title.
        max_memory_mib, max_error: the reader's limits; the opening table then names, per
            group, the fastest method within them.

    Returns:
        The path of ``report.html``.
    """
    out_dir = Path(out_dir)
    options = {
        "max_memory_mib": max_memory_mib,
        "max_error": max_error,
        "training": training,
        "curves": curves,
        "ratios": ratios,
    }
    with _staged(out_dir) as staging:
        figures_dir = staging / "figures"
        figures_dir.mkdir()
        doc = build_document(frame, figures_dir, command=command, sources=sources, **options)
        (staging / "report.md").write_text(to_markdown(doc, staging), encoding="utf-8")
        (staging / "report.html").write_text(to_html(doc, staging), encoding="utf-8")
    return out_dir / "report.html"


@contextlib.contextmanager
def _staged(out: Path) -> Iterator[Path]:
    """A temporary sibling of the folder `out` to write into, whose files replace `out`'s when the
    block completes; removed when it does not (Ctrl-C included), so `out` is never half-written."""
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"--out {out} is a file; give a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # as mkdir would have made it (mkdtemp: 0700)
        yield staging
        if not out.exists():
            os.rename(staging, out)
            return
        for item in staging.iterdir():  # the report's files, and figures/ whose old figures go
            target = out / item.name
            if item.is_dir() and target.is_dir():
                for stale in (*target.glob("*.png"), *target.glob("*.svg")):
                    stale.unlink()
                for figure in item.iterdir():
                    os.replace(figure, target / figure.name)
            else:
                os.replace(item, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def build_document(
    frame: pd.DataFrame,
    figures_dir: Path,
    *,
    command: str,
    sources: list[str],
    max_memory_mib: float | None = None,
    max_error: float | None = None,
    training: pd.DataFrame | None = None,
    curves: pd.DataFrame | None = None,
    ratios: pd.DataFrame | None = None,
) -> Document:
    """The report's sections (drawing its figures into `figures_dir`)."""
    df = prepare(frame)
    timed = prepare_ratios(ratios)
    groups = speeds(timed)
    ok = ok_rows(df)
    runs = prepare_training(training) if training is not None and not training.empty else None
    styles = method_styles([*df["method"], *(runs["method"] if runs is not None else ())])
    sections = []
    if runs is None or not df.empty:
        sections.append(Section("Summary", tuple(_summary(df, ok, timed))))
    if not ok.empty:
        wins = wins_table(df, groups, max_memory_mib=max_memory_mib, max_error=max_error)
        findings = findings_table(gradient_findings(ok))
        sections += [
            Section(
                "Which method wins",
                (wins_summary(wins), Table("Winners and picks per group", wins, _WINS_NOTE)),
            ),
            Section("Findings", (Table("Published claims checked on this run", findings, _FINDINGS_NOTE),)),
            Section("Accuracy vs cost", tuple(plots.accuracy_vs_cost(df, ok, styles, figures_dir))),
            Section("Memory scaling", (_memory(df, ok, styles, figures_dir),)),
            *_size_section(ok, groups),
            *_framework_section(ok, groups),
            Section("Time split", tuple(plots.time_split(df, ok, styles, figures_dir)) or (_NO_TIME,)),
            Section(
                "Gradient error vs tolerance",
                tuple(plots.error_vs_tolerance(df, ok, styles, figures_dir)) or (_NO_ADAPTIVE,),
            ),
            Section(
                "Measurements",
                (Table("Per group and method", measurements_table(df, groups), _MEASURED_NOTE),),
            ),
        ]
    if not timed.empty:
        sections.append(_speed_section(timed, groups))
    if runs is not None:
        sections += _training_sections(runs, curves, styles, figures_dir)
    both = df if runs is None else pd.concat([df, _as_records(runs)], ignore_index=True)
    sections += [
        Section(
            "Failed cases", (Table("Records whose status is not ok", failures_table(both), _FAILED_NOTE),)
        ),
        Section(
            "Warnings", (Table("Warnings raised while cases ran", warnings_table(both), _WARNINGS_NOTE),)
        ),
        Section("Run metadata", (Table("Runs and results files", metadata_table(both), _META_NOTE),)),
    ]
    return Document("odebench report", command, tuple(str(s) for s in sources), tuple(sections))


def _training_sections(runs: pd.DataFrame, curves, styles, figures_dir: Path) -> list[Section]:
    finished = int((runs["status"] == "ok").sum())
    summary = (
        f"{len(runs)} training runs: {finished} finished, {len(runs) - finished} stopped early; studies "
        f"{', '.join(sorted(set(runs['study'])))}; methods {', '.join(method_order(runs['method']))}; "
        f"{runs['group'].nunique()} group(s) of runs that differ in the method and the seed alone."
    )
    curves = curves if curves is not None else pd.DataFrame(columns=["case_id", "study", "method"])
    findings = findings_table(training_findings(runs, curves))
    depth = depth_table(runs, curves)
    return [
        Section("Training", (summary,)),
        Section(
            "Training findings",
            (Table("Published training claims checked on this run", findings, _TRAINING_FINDINGS_NOTE),),
        ),
        Section(
            "Training: final metrics",
            (Table("Per group and method", final_metrics_table(runs), _FINAL_NOTE),),
        ),
        *(
            [
                Section(
                    "Training: ResNets against depth",
                    (Table("Per study, method and depth N", depth, _DEPTH_NOTE),),
                )
            ]
            if depth is not None
            else []
        ),
        Section(
            "Training curves",
            tuple(plots.training_curves(curves, runs, styles, figures_dir)) or (_NO_CURVES,),
        ),
    ]


def _as_records(runs: pd.DataFrame) -> pd.DataFrame:
    """Training runs in the shape the failure, warning and metadata tables read."""
    return runs.assign(task=runs["study"], label=[_training_label(r) for r in runs.to_dict("records")])


def _training_label(row: dict) -> str:
    done = row.get("iterations_done")
    where = "" if done is None or pd.isna(done) else f" (stopped after {int(done)} iterations)"
    return f"{row['study']}/{row['method']}/{row['solver']}/{row['setting']}/seed={row['seed']}{where}"


def _summary(df: pd.DataFrame, ok: pd.DataFrame, timed: pd.DataFrame) -> list[Block]:
    if df.empty:
        return ["**No records**: the results files hold no measurements, so there is nothing to report."]
    n_failed = int((df["status"] != "ok").sum())
    text = (
        f"{len(df)} records: {int((df['status'] == 'ok').sum())} ok, {n_failed} not ok; "
        f"{df['task'].nunique()} task(s) ({', '.join(sorted(set(df['task'])))}), "
        f"methods {', '.join(method_order(df['method']))}; {df['regime'].nunique()} regime(s) "
        f"(task[size] · solver · dtype · device) in {df.groupby(['regime', 'setting']).ngroups} "
        "group(s) of cases that differ in the method alone."
    )
    cases = timed.drop_duplicates("case_id") if not timed.empty else timed
    if not cases.empty:
        text += (
            f" {len(cases)} ratio case(s) ({int((cases['status'] == 'ok').sum())} ok) timed the methods of "
            f"{timed.groupby(['regime', 'setting']).ngroups} group(s) in one process: the report's only "
            "source of speed verdicts (see Speed)."
        )
    else:
        text += " No ratio case timed the methods in one process, so the report gives no speed verdict."
    blocks: list[Block] = [text]
    if ok.empty:
        blocks.append(
            "**No successful records**: every case failed, so there are no figures, findings or "
            "medians; see the failed cases below."
        )
        return blocks
    never = method_order(set(df["method"]) - set(ok["method"]))
    if never:
        blocks.append(
            f"**No successful record** (listed under failed cases, missing from figures): {', '.join(never)}."
        )
    if len(ok) < df.loc[df["status"] == "ok", "case_id"].size:
        blocks.append("Cases recorded more than once are shown as the median of their measurements.")
    if not ok.empty:
        blocks.append(
            "Nothing in this report pools cases that differ in solver, tolerance or step, size, "
            "dtype or device: each is a row, a panel or a column of its own. Seeds are replicates "
            "and enter as medians with their count n."
        )
    return blocks


def _speed_section(timed: pd.DataFrame, groups) -> Section:
    table = speed_table(timed, groups)
    counts = table["verdict"].value_counts()
    tally = ", ".join(f"{counts[v]} {v}" for v in ("faster", "slower", "tie") if v in counts)
    text = (
        f"{len(table)} method(s) timed against a baseline in {timed.groupby(['regime', 'setting']).ngroups} "
        f"group(s), interleaved round by round in one process: {tally or 'no ratio'}."
    )
    return Section(
        "Speed: same-run time ratios",
        (text, Table("Time over the baseline's, per group", table, _SPEED_NOTE)),
    )


def _memory(df, ok, styles, figures_dir) -> Block:
    figure = plots.memory_scaling(df, ok, styles, figures_dir)
    if figure is None:
        return (
            "No task was measured at several sizes with everything else equal (solver, tolerance "
            "or step, dtype, device), so there is no memory scaling to show."
        )
    return figure


def _size_section(ok, groups) -> list[Section]:
    """Memory and time against the size knob, and Table 1's orderings per size (none without a
    task run at two sizes)."""
    tables = size_tables(ok, groups)
    if not tables:
        return []
    blocks = [
        Table(f"Peak memory and time against size: {title}", table, _SIZE_NOTE)
        for title, table in tables.items()
    ]
    orderings = ordering_table(ok)
    if orderings is not None:
        blocks.append(Table("Memory orderings of Matsubara et al. (2021), Table 1", orderings, _ORDER_NOTE))
    return [Section("Memory and time against size", tuple(blocks))]


def _framework_section(ok, groups) -> list[Section]:
    """PyTorch and JAX methods side by side (none without a context that ran both)."""
    table = framework_table(ok, groups)
    if table is None:
        return []
    return [
        Section("PyTorch or JAX?", (Table("Per context: torch and diffrax methods", table, _FRAMEWORK_NOTE),))
    ]


_FRAMEWORK_NOTE = (
    "A context is one task, size, solver, setting, dtype and device; n is the number of seeds. Time per "
    "gradient is the median forward plus backward after a warm-up (a JAX program after its compile, "
    "which is given apart); time x naive is from the same-run ratio cases ('–' where not timed). Memory "
    "is the peak of one forward plus backward by the backend named (allocator: torch's tensor bytes; "
    "xla: the compiled programs' temporaries and outputs). diffrax steps on its own grid, so its rows "
    "compare error and cost, not discrete-exact gradients."
)


_SIZE_NOTE = (
    "One row per solver, setting and method: each size's peak memory of one forward plus backward (in "
    "parentheses: over naive's in the same context) with its n, and its time over naive's from the "
    "same-run ratio cases ('–' where not timed). Nothing is pooled across rows or sizes."
)
_ORDER_NOTE = (
    f"A context is one task, size, solver, setting, dtype and device. An ordering holds where the lighter "
    f"method's peak is below the heavier's by more than {TIE:g}x, ties within it, and is reversed "
    "beyond it; n is the number of contexts with both methods."
)
_NO_TIME = "No successful timed case, so there is no time split to show."
_NO_ADAPTIVE = "No successful adaptive-step case with a gradient error, so there is nothing to draw."
_WINS_NOTE = (
    "A group is one regime (task[size] · solver · dtype · device) at one setting (tolerance or "
    "step): its cases differ in the method alone, and n is the number of seeds behind each value. "
    f"Errors and memory within {TIE:g}x of the best are ties (listed together), and so are errors "
    "at the reference's resolution. Time is ranked only on same-run ratios (see 'Speed'): a pair "
    f"whose interquartile range covers 1, or whose median is within {RESOLUTION:g}x of 1 (how far a "
    "same-run ratio moves between runs here), is a tie, and the tied methods are listed together; the "
    "fastest is shown against its closest rival. The Pareto set holds the methods no other beats "
    "on error, memory and time together; several methods tied on time leave a pick to the least "
    f"memory. 'Pick if memory is tight': the fastest method using at most {NEAR_BEST:g}x "
    f"the group's least memory; 'pick if accuracy matters': the fastest within {NEAR_BEST:g}x the "
    "group's lowest error. `odebench report --max-memory MIB --max-error E` adds the fastest "
    "method within your own limits."
)
_VERDICT_RULE = (
    "Each part of a claim compares pairs that differ in the compared field alone (the seed "
    f"included) and gives the median effect with its sign-test interval (at least {CONFIDENCE:.0%} "
    f"coverage, the exact coverage stated); n is the number of pairs, at least {MIN_PAIRS} for a "
    "verdict. A part holds when its interval lies on the published side of 'no effect' (and its "
    "median reaches half the published size, else 'direction only'); 'not reproduced' when it "
    "lies on the other side; 'no detectable difference' when it covers 'no effect'. A claim "
    "holds when all its parts do, holds in part when some do, and a verdict on a setup that "
    "deviates from the published one says so ('at this scale'): it is never a refutation."
)
_FINDINGS_NOTE = (
    "Each claim of a method's paper about its gradients, on this run's successful cases. " + _VERDICT_RULE
)
_MEASURED_NOTE = (
    "One row per group (regime and setting) and method; values are medians over seeds and "
    "repeated records, 'ok' counts successful of all records. Times forward and backward were "
    "measured in each case's own process: information, not a ranking (the same work's time moves "
    "up to 1.7x between processes). 'Time vs naive, same run' is the method's time over naive's "
    "timed interleaved in one process, median over rounds [interquartile range]. Memory vs naive "
    "is on the same case. '–': not measured or no successful case."
)
_SPEED_NOTE = (
    "Each method's forward+backward time over the baseline's, both timed in the same process, "
    "interleaved round by round (order rotated each round): the median over rounds and its "
    "interquartile range, the rounds and ratio cases (runs: seeds or files) behind it. 'faster' "
    f"or 'slower' when the whole range lies on one side of 1 and the median beyond {RESOLUTION:g}x "
    "(how far the same pair's ratio moves between runs on this machine class), else 'tie'. These "
    "ratios are the only source of this report's speed verdicts."
)
_WARNINGS_NOTE = "Each distinct warning, how many cases raised it, and the first of them."
_TRAINING_FINDINGS_NOTE = (
    "Each training claim of a study's paper, on this run's finished training runs; the study's "
    "deviations from the published setup are listed beside the verdict. Training times come "
    "from separate processes (up to 1.7x apart on this machine class for the same work): a time "
    "part holds only when its interval over seed pairs clears that noise. " + _VERDICT_RULE
)
_FINAL_NOTE = (
    "One row per group (study · solver · setting · dtype · device · budget) and method: "
    "finished of all runs, then medians over seeds; in brackets the median over seeds of the "
    "ratio to naive's run with the same seed. Held-out: the study's held-out metric (lower is "
    "better); time to target: training time until the smoothed loss first reached the study's "
    "target; gradient error: median over the checked iterations against a float64 reference."
)
_NO_CURVES = "No training run reported a curve point."
_DEPTH_NOTE = (
    "ResNet studies (one layer per fixed step: depth N = 1/step): the median over seeds of each value "
    "checked at the first iteration (start) and the last (end); under each study, the least-squares "
    "slope of log10(median) against log10(N) with its number of depths (-1: rate 1/N; 0: no fall). "
    "grad_rel_error is backprop's gradient against the ODE reference over every layer; a study's own "
    "columns are described in its docstring (odebench list)."
)
_FAILED_NOTE = (
    "Cases that did not complete, with their status and error message; they are missing from the figures."
)
_META_NOTE = "The metadata stored with the records (meta_* columns): one column per results file and run."
