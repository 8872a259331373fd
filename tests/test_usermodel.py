"""`compare_methods` and ``run --model``: a user's model measured exactly as `run_case` measures a task."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import matplotlib.figure
import pytest
import torch
from torch import nn

from odebench import tasks
from odebench.cli import main
from odebench.errors import InvalidInputError, OdebenchError, UnknownNameError
from odebench.jobs.gradient import Case, Record, run_case
from odebench.jobs.ratio import RatioCase, RatioRecord, ratio_fields
from odebench.methods import CORE
from odebench.results import ResultsWriter, load, load_records
from odebench.tasks.linear import LinearField
from odebench.usermodel import MethodComparison, UserTask, compare_methods

PLUGIN = str(Path(__file__).parent / "harness" / "faults_plugin.py")
pytestmark = pytest.mark.usefixtures("faults_registered")

#: Record fields that must match run_case's on the same problem, case for case.
SAME = (
    "status", "nfe_forward", "nfe_backward", "vjp_backward", "steps_accepted", "steps_rejected",
    "steps_accepted_backward", "steps_rejected_backward", "grad_rel_error", "grad_rel_error_y0",
    "grad_rel_error_params", "grad_cosine", "grad_rel_error_discrete", "reference_kind",
    "reference_error", "reference_hash", "at_reference_resolution", "n_params", "state_size",
    "exact_discrete_gradient", "method_backend",
)  # fmt: skip
COUNTS = SAME[1:8]


def linear():
    return tasks.get("linear").build(2)


def quiet(*args, **kwargs) -> MethodComparison:
    """`compare_methods` without progress, one repeat and no ratio cases (unless asked)."""
    kwargs.setdefault("repeats", 1)
    kwargs.setdefault("ratios", False)
    return compare_methods(*args, progress=False, **kwargs)


@pytest.fixture(scope="module")
def on_linear():
    """compare_methods on the linear task's field and data, scored against its exact gradient,
    with its methods also timed in one process (the ratio case)."""
    p = linear()
    return quiet(
        p.func, p.y0, p.t, p.loss, methods=CORE, rtols=(1e-6,), reference=p.exact_gradient(),
        reference_error=p.exact_gradient_error, ratios=True,
    )  # fmt: skip


def test_same_counts_and_errors_as_run_case_case_for_case(on_linear, cache_dir):
    records = {(r.case.method, r.case.rtol): r for r in on_linear.records}
    assert sorted(records) == sorted((m, 1e-6) for m in CORE)
    for (method, rtol), mine in records.items():
        theirs = run_case(
            Case(task="linear", method=method, size=2, rtol=rtol, repeats=1), cache_dir=cache_dir
        )
        for field in SAME:
            if field != "reference_kind":  # the same gradient, passed by the user: "user"
                assert getattr(mine, field) == getattr(theirs, field), (method, rtol, field)
        assert (mine.reference_kind, theirs.reference_kind) == ("user", "analytic")
        assert (mine.case.atol, mine.case.max_steps, mine.case.dtype) == (rtol * 1e-2, 20_000, "float64")
    assert records[("aca", 1e-6)].nfe_forward > 0


def test_automatic_reference_is_dopri8_on_the_float64_copy(cache_dir):
    p = linear()
    (mine,) = quiet(p.func, p.y0, p.t, p.loss, methods=["aca"], rtols=(1e-6,)).records
    theirs = run_case(Case(task="linear", method="aca", size=2, rtol=1e-6, repeats=1), cache_dir=cache_dir)
    assert (mine.reference_kind, theirs.reference_kind) == ("dopri8", "analytic")
    assert [getattr(mine, c) for c in COUNTS] == [getattr(theirs, c) for c in COUNTS]
    assert mine.grad_rel_error_discrete == theirs.grad_rel_error_discrete
    # Two references of one gradient: the errors against them differ by the references' distance.
    assert 0 < mine.reference_error < 1e-9
    assert abs(mine.grad_rel_error - theirs.grad_rel_error) < 1e-11 < theirs.grad_rel_error * 1e-3


def test_table_is_a_results_frame_and_save_feeds_report_and_compare(on_linear, tmp_path, capsys):
    saved = on_linear.save(tmp_path / "mine.jsonl")
    frame = load(saved)
    assert list(on_linear.table.columns) == list(frame.columns)
    assert on_linear.table["case_id"].tolist() == frame["case_id"].tolist()
    assert len(frame) == 5 and set(frame["status"]) == {"ok"}
    assert frame["meta_suite"].iloc[0] == "compare_methods"
    assert frame["task"].iloc[0] == on_linear.task
    with pytest.raises(InvalidInputError, match="already exists; choose another path or remove it"):
        on_linear.save(saved)
    assert main(["report", str(saved), "--out", str(tmp_path / "report")]) == 0
    assert on_linear.task in (tmp_path / "report" / "report.md").read_text()
    assert main(["compare", str(saved), str(saved)]) == 0
    assert "6 cases in both runs" in capsys.readouterr().out  # 5 methods' cases and their ratio case
    (timed,) = load_records(saved, "ratio")  # saved with the records: the report's speed verdicts
    assert timed.status == "ok" and sorted(timed.ratios) == sorted(m for m in CORE if m != "naive")
    assert "## Speed: same-run time ratios" in (tmp_path / "report" / "report.md").read_text()
    assert on_linear.recommend().pick is not None
    figure = on_linear.plot(tmp_path / "figure.png")
    assert isinstance(figure, matplotlib.figure.Figure) and figure.axes
    assert (tmp_path / "figure.png").read_bytes()[:4] == b"\x89PNG"
    assert isinstance(on_linear.plot(), matplotlib.figure.Figure)  # saved only when asked
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png", "mine.jsonl", "report"]


def test_failures_become_records_and_the_call_returns():
    p = linear()
    torch.set_num_threads(3)  # measured with one thread, as odebench run does; this one restored
    try:
        result = quiet(p.func, p.y0, p.t, p.loss, methods=["fault_raise", "fault_nan", "aca"], rtols=(1e-5,))
        assert torch.get_num_threads() == 3 and result.table["meta_threads"].tolist() == [1, 1, 1]
    finally:
        torch.set_num_threads(1)
    got = {r.case.method: (r.status, r.error) for r in result.records}
    assert got == {
        "fault_raise": ("error", "RuntimeError: injected failure"),
        "fault_nan": ("nan", "NonFiniteGradient: loss is nan"),
        "aca": ("ok", None),
    }
    assert result.records[1].nfe_forward > 0  # measured before the failure, kept


def test_worker_records_a_killed_method_and_goes_on(cache_dir):
    p = linear()
    result = quiet(
        p.func, p.y0, p.t, p.loss, methods=["fault_kill", "fault_segfault", "aca"], rtols=(1e-5,),
        isolate=True, plugins=[PLUGIN], timeout=120,
    )  # fmt: skip
    records = {r.case.method: r for r in result.records}
    assert [records[m].status for m in ("fault_kill", "fault_segfault", "aca")] == [
        "crashed",
        "crashed",
        "ok",
    ]
    assert "signal SIGKILL" in records["fault_kill"].error
    assert "signal SIGSEGV" in records["fault_segfault"].error
    theirs = run_case(Case(task="linear", method="aca", size=2, rtol=1e-5, repeats=1), cache_dir=cache_dir)
    assert [getattr(records["aca"], c) for c in COUNTS] == [getattr(theirs, c) for c in COUNTS]
    assert on_registry_only_builtins()


def on_registry_only_builtins() -> bool:
    return not [name for name in tasks.names() if name.startswith("model:")]


class MainField(LinearField):
    """Stands for a class defined in a notebook."""


MainField.__module__ = "__main__"


@pytest.mark.parametrize("kind", ["local class", "lambda loss", "__main__ class", "plug-in class"])
def test_worker_mode_refuses_a_model_it_cannot_ship_in_one_line(kind, monkeypatch):
    p = linear()
    func, loss = p.func, p.loss
    if kind == "local class":

        class Local(LinearField):
            pass

        func, fragment = Local(p.func.A.detach().clone()), "Can't pickle local object"
    elif kind == "lambda loss":
        loss, fragment = (lambda solution: solution.sum()), "Can't pickle"
    elif kind == "__main__ class":
        monkeypatch.setattr(sys.modules["__main__"], "MainField", MainField, raising=False)
        func, fragment = MainField(p.func.A.detach().clone()), "MainField is defined in __main__"
    else:  # a plug-in is loaded from its path, not importable by its module name
        func = tasks.get("fault_nan").build().func
        fragment = f"_Field comes from module {type(func).__module__}, which cannot be imported by name"
    with pytest.raises(InvalidInputError) as refusal:
        quiet(func, p.y0, p.t, loss, methods=["aca"], isolate=True)
    message = str(refusal.value)
    assert "\n" not in message and fragment in message and message.endswith("(isolate=False)")
    assert on_registry_only_builtins()


def test_fixed_step_default_ends_a_step_on_every_output_time():
    """On t = 0, 1, 2, 3 a step of span/100 = 0.03 would interpolate every output (an error near
    1e-5); the default is the largest step below it that divides the unit intervals, 1/34."""
    p = linear()
    (record,) = quiet(p.func, p.y0, p.t, p.loss, methods=["aca"], solver="rk4").records
    assert record.case.step_size == 1 / 34 and record.case.rtol is None
    assert (record.steps_accepted, record.nfe_forward) == (102, 4 * 102)
    assert record.grad_rel_error < 1e-8 and record.grad_rel_error_discrete < 1e-14


class SmallField(nn.Module):
    """An MLP field with a buffer, as a user writes one."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
        self.register_buffer("scale", torch.tensor(0.5))

    def forward(self, t, y):
        return self.scale * self.net(y)


def small_problem(dtype, device):
    torch.manual_seed(0)
    func = SmallField().to(dtype=dtype, device=device)
    y0 = torch.tensor([[1.0, 0.5], [0.2, -0.3]], dtype=dtype, device=device)
    t = torch.linspace(0.0, 1.0, 5, dtype=dtype, device=device)
    target = torch.zeros(5, 2, 2, dtype=dtype, device=device)
    return func, y0, t, target


class MSE(nn.Module):
    def __init__(self, target) -> None:
        super().__init__()
        self.register_buffer("target", target)

    def forward(self, solution):
        return (solution - self.target).pow(2).mean()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_user_objects_are_left_untouched_in_float32_and_float64(dtype, device):
    func, y0, t, target = small_problem(dtype, device)
    loss = MSE(target)
    y0.requires_grad_(True)
    func.net[0].weight.grad = torch.full_like(func.net[0].weight, 7.0)
    func.net[2].bias.requires_grad_(False)
    before = {k: v.clone() for k, v in func.state_dict().items()}
    flags = [p.requires_grad for p in func.parameters()]
    y0_before, t_before = y0.detach().clone(), t.clone()

    result = quiet(func, y0, t, loss, methods=["naive", "aca"])

    name = {torch.float32: "float32", torch.float64: "float64"}[dtype]
    assert [(r.case.method, r.case.rtol, r.status) for r in result.records] == [
        ("naive", 1e-3, "ok"), ("naive", 1e-6, "ok"), ("aca", 1e-3, "ok"), ("aca", 1e-6, "ok"),
    ]  # fmt: skip
    assert result.left_out == []  # 1e-6 is above float32's epsilon
    assert {(r.case.dtype, r.case.device) for r in result.records} == {(name, str(y0.device))}
    assert {r.n_params for r in result.records} == {2 * 8 + 8 + 8 * 2 + 2}  # the frozen bias too
    bound = 1e-4 if dtype == torch.float32 else 1e-6
    assert max(r.grad_rel_error for r in result.records if r.case.rtol == 1e-6) < bound
    state = func.state_dict()
    assert all(torch.equal(state[k], v) and state[k].dtype == v.dtype for k, v in before.items())
    assert {p.device for p in func.parameters()} == {y0.device}
    assert [p.requires_grad for p in func.parameters()] == flags == [True, True, True, False]
    assert torch.equal(func.net[0].weight.grad, torch.full_like(func.net[0].weight, 7.0))
    assert [p.grad for p in list(func.parameters())[1:]] == [None, None, None]
    assert y0.requires_grad and y0.grad is None and torch.equal(y0.detach(), y0_before)
    assert torch.equal(t, t_before) and not t.requires_grad
    assert torch.equal(loss.target, target) and loss.target.dtype == dtype


def test_float32_model_is_scored_against_its_exact_float64_upcast():
    func32, y0, t, target = small_problem(torch.float32, "cpu")
    func64 = copy.deepcopy(func32).double()
    runs = {
        dtype: quiet(f, y0.to(dtype), t.to(dtype), MSE(target.to(dtype)), methods=["aca"], rtols=(1e-6,))
        for dtype, f in ((torch.float32, func32), (torch.float64, func64))
    }
    (r32,), (r64,) = runs[torch.float32].records, runs[torch.float64].records
    assert (r32.case.dtype, r64.case.dtype) == ("float32", "float64")
    assert r32.reference_hash == r64.reference_hash and r32.reference_kind == "dopri8"
    # One reference, two arithmetics: both errors are dopri5's at rtol 1e-6, yet not equal.
    assert r32.grad_rel_error != r64.grad_rel_error
    assert max(r32.grad_rel_error, r64.grad_rel_error) < 2e-6


def test_model_name_is_its_content():
    p = linear()
    a = UserTask(p.func, p.y0, p.t, p.loss)
    assert a.name.startswith("model:LinearField-") and len(a.name) == len("model:LinearField-") + 8
    assert UserTask(copy.deepcopy(p.func), p.y0.clone(), p.t.clone(), copy.deepcopy(p.loss)).name == a.name
    nudged = copy.deepcopy(p.func)
    with torch.no_grad():
        nudged.A[0, 0] = torch.nextafter(nudged.A[0, 0], torch.tensor(10.0, dtype=torch.float64))
    target = torch.zeros(4, 2, dtype=torch.float64)
    closures = [lambda s, w=w: (s - w).pow(2).mean() for w in (target, target + 1)]
    names = {
        a.name,
        UserTask(nudged, p.y0, p.t, p.loss).name,
        UserTask(p.func, p.y0 + 1, p.t, p.loss).name,
        UserTask(p.func, p.y0, p.t * 2, p.loss).name,
        *(UserTask(p.func, p.y0, p.t, c).name for c in closures),
    }
    assert len(names) == 6
    same = Case(task=a.name, method="aca", size=1, rtol=1e-6).case_id
    assert (
        same == Case(task=UserTask(p.func, p.y0, p.t, p.loss).name, method="aca", size=1, rtol=1e-6).case_id
    )


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda p: (lambda t, y: y, p.y0, p.t, p.loss, {}), "func must be a torch.nn.Module"),
        (lambda p: (p.func, p.y0.long(), p.t, p.loss, {}), "y0 must be a floating-point tensor"),
        (
            lambda p: (p.func, p.y0.half(), p.t, p.loss, {}),
            "y0 has dtype torch.float16; valid: float64, float32",
        ),
        (lambda p: (p.func, p.y0, p.t.flip(0), p.loss, {}), "t must be one-dimensional, strictly increasing"),
        (
            lambda p: (p.func, p.y0.float(), p.t, p.loss, {}),
            "parameter A has dtype torch.float64 but y0 has torch.float32",
        ),
        (lambda p: (p.func, p.y0, p.t, lambda s: s, {}), "loss(solution) must return a scalar tensor"),
        (lambda p: (p.func, p.y0[:1], p.t, p.loss, {}), "your model failed on a probe: RuntimeError"),
        (lambda p: (p.func, p.y0, p.t, p.loss, {"reference": (p.y0, {"B": p.func.A})}), "it names ['B']"),
        (lambda p: (p.func, p.y0, p.t, p.loss, {"methods": ["acca"]}), "unknown method 'acca'; valid"),
        (lambda p: (p.func, p.y0, p.t, p.loss, {"rtols": (1e-20,)}), "no case can run: 5 x rtol"),
    ],
)
def test_bad_input_is_refused_in_one_line(make, fragment):
    *problem, kwargs = make(linear())
    with pytest.raises(OdebenchError) as refusal:
        quiet(*problem, **{"methods": CORE, **kwargs})
    assert fragment in str(refusal.value) and "\n" not in str(refusal.value)
    assert isinstance(refusal.value, (InvalidInputError, UnknownNameError))
    assert on_registry_only_builtins()


def test_recommend_picks_the_fastest_within_the_limits_and_says_why(tmp_path):
    """A constructed table: memory in MiB, times in s, one failure; and the same-run ratios that
    alone rank time (the cases' own times below would rank differently: they are never read)."""
    rows = [  # method, rtol, status, error, memory MiB, forward s, backward s
        ("naive", 1e-3, "ok", 1e-3, 4.0, 0.01, 0.01),
        ("naive", 1e-6, "ok", 1e-6, 8.0, 0.02, 0.02),
        ("adjoint", 1e-3, "ok", 1e-2, 0.5, 0.001, 0.001),
        ("adjoint", 1e-6, "ok", 1e-5, 0.5, 0.02, 0.10),
        ("aca", 1e-3, "ok", 1e-3, 1.0, 0.01, 0.02),
        ("aca", 1e-6, "ok", 1e-6, 2.0, 0.02, 0.03),
        ("symplectic", 1e-6, "error", None, None, None, None),
    ]
    rounds = {  # per tolerance, each method's time over naive's, round by round
        1e-3: {"adjoint": [2.9, 3.0, 3.1, 3.0, 3.05], "aca": [1.45, 1.5, 1.55, 1.5, 1.52]},
        1e-6: {"adjoint": [2.4, 2.5, 2.6, 2.5, 2.45], "aca": [1.2, 1.25, 1.3, 1.22, 1.25]},
    }
    path = tmp_path / "constructed.jsonl"
    task = "model:Mine-00000000"
    with ResultsWriter(path, {"run_id": "r"}) as writer:
        for method, rtol, status, error, mib, fwd, bwd in rows:
            case = Case(task=task, method=method, size=1, rtol=rtol, atol=rtol * 1e-2)
            measured = {} if status != "ok" else dict(
                grad_rel_error=error, at_reference_resolution=False, peak_memory_bytes=int(mib * 2**20),
                time_forward_s=fwd, time_backward_s=bwd,
            )  # fmt: skip
            writer.write(
                Record(case, case.case_id, status, error=None if status == "ok" else "E", **measured)
            )
        for rtol, timed in rounds.items():
            case = RatioCase(task=task, methods=("adjoint", "aca"), size=1, rtol=rtol, atol=rtol * 1e-2)
            writer.write(RatioRecord(case, case.case_id, "ok", **ratio_fields(timed)))
    result = MethodComparison(path)

    choice = result.recommend(max_memory=2.0)
    among = "among tol=0.001, tol=1e-06: the loosest setting where a method meets them"
    assert choice.pick == "aca at tol=0.001"
    assert choice.limits == f"peak memory <= 2 MiB; {among}"
    assert choice.reasons == {
        "naive at tol=0.001": "peak memory 4 MiB over the budget",
        "adjoint at tol=0.001": "meets the limits, 2.00x [2.00-2.00] the time of aca (same-run rounds)",
        "naive at tol=1e-06": "peak memory 8 MiB over the budget",
        "adjoint at tol=1e-06": "meets the limits at a tighter setting than tol=0.001",
        "aca at tol=1e-06": "meets the limits at a tighter setting than tol=0.001",
        "symplectic at tol=1e-06": "failed (error)",
    }
    assert str(choice).splitlines()[0] == f"pick aca at tol=0.001 (peak memory <= 2 MiB; {among})"
    accurate = result.recommend(max_memory=2.0, max_error=1e-4)
    assert accurate.pick == "aca at tol=1e-06"  # no method meets 1e-4 at the looser tolerance
    assert accurate.reasons["adjoint at tol=0.001"] == "gradient error 1.0e-02 above the target"
    one = result.recommend(rtol=1e-6)
    assert one.pick == "naive at tol=1e-06"
    assert (
        one.limits == "no limits: the fastest; among tol=1e-06: the loosest setting where a method meets them"
    )
    assert result.recommend(max_memory=0.1).pick is None
    with pytest.raises(InvalidInputError) as refusal:
        result.recommend(rtol=1e-9)
    assert str(refusal.value) == "no record at rtol=1e-09; measured: 1e-06, 0.001"


# ------------------------------------------------------------------------------ the shell


def test_run_model_from_the_shell_in_a_worker(tmp_path, capsys, cache_dir):
    out = tmp_path / "shell.jsonl"
    argv = ["run", "--model", "tests.model_factories:linear", "--method", "aca", "naive", "--rtol", "1e-5"]
    code = main([*argv, "--repeats", "1", "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    frame = load(out)
    assert frame["task"].str.startswith("model:LinearField-").all()
    assert frame["meta_command"].iloc[0].startswith("odebench run --model tests.model_factories:linear")
    for method in ("aca", "naive"):
        row = frame[frame["method"] == method].iloc[0]
        theirs = run_case(
            Case(task="linear", method=method, size=2, rtol=1e-5, repeats=1), cache_dir=cache_dir
        )
        assert row["status"] == "ok"
        assert [int(row[c]) for c in COUNTS] == [getattr(theirs, c) for c in COUNTS]
    assert on_registry_only_builtins()
    # Resuming finds the same case ids: the model's name is its content.
    assert main([*argv, "--repeats", "1", "--out", str(out), "--resume", "--no-progress"]) == 0
    assert "0 cases run (0 failed), 3 already recorded" in capsys.readouterr().out  # and the ratio case


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("tests.model_factories", "expected package.module:factory"),
        ("no_such_module:make", "cannot import no_such_module: ModuleNotFoundError"),
        ("tests.model_factories:missing", "tests.model_factories has no function missing"),
        ("tests.model_factories:raises", "raises() raised RuntimeError: no data today"),
        ("tests.model_factories:three", "three() must return (func, y0, t, loss), got tuple"),
        ("tests.model_factories:lambda_loss", "Can't pickle local object"),
    ],
)
def test_bad_model_exits_2_with_one_line(spec, fragment, capsys):
    code = main(["run", "--model", spec, "--method", "aca", "--rtol", "1e-5", "--out", "unused.jsonl"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and fragment in err, err
    assert on_registry_only_builtins()


def test_model_runs_in_process_where_a_worker_cannot_load_it(capsys):
    argv = ["run", "--model", "tests.model_factories:lambda_loss", "--in-process", "--dry-run"]
    assert main([*argv, "--method", "aca", "--rtol", "1e-5"]) == 0
    out = capsys.readouterr().out
    assert "model:LinearField-" in out and "/aca/dopri5/tol=1e-05/float64/cpu" in out and "\n1 case\n" in out
