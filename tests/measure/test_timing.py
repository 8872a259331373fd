"""Forward/backward timing: call counts, warm-up, statistics and synchronisation, on a fake clock."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch

from odebench.measure.timing import PhaseTiming, time_forward_backward


class Script:
    """A fake clock whose forward and backward calls take scripted durations; logs every event."""

    def __init__(self, forward: list[float], backward: list[float]) -> None:
        self.now = 0.0
        self.forward_durations = iter(forward)
        self.backward_durations = iter(backward)
        self.log: list[str] = []
        self.results: list[object] = []
        self.received: list[object] = []

    def clock(self) -> float:
        self.log.append("clock")
        return self.now

    def setup(self) -> None:
        self.log.append("setup")

    def forward(self) -> object:
        self.log.append("forward")
        self.now += next(self.forward_durations)
        result = object()  # a fresh "loss" every call
        self.results.append(result)
        return result

    def backward(self, loss: object) -> None:
        self.log.append("backward")
        self.received.append(loss)
        self.now += next(self.backward_durations)

    def run(self, **kwargs):
        return time_forward_backward(self.forward, self.backward, clock=self.clock, **kwargs)


def test_calls_and_warmup_excluded():
    script = Script(forward=[100.0, 100.0, 1.0, 2.0, 3.0], backward=[50.0, 50.0, 4.0, 5.0, 6.0])
    stats = script.run(repeats=3, warmup=2, setup=script.setup)
    assert script.log.count("forward") == script.log.count("backward") == script.log.count("setup") == 5
    assert stats.forward.samples == (1.0, 2.0, 3.0)
    assert stats.backward.samples == (4.0, 5.0, 6.0)
    assert stats.total.samples == (5.0, 7.0, 9.0)
    assert (stats.repeats, stats.warmup) == (3, 2)


def test_backward_gets_each_forward_result():
    script = Script(forward=[1.0] * 4, backward=[1.0] * 4)
    script.run(repeats=3, warmup=1)
    assert script.received == script.results
    assert len({id(r) for r in script.results}) == 4


def test_no_warmup():
    script = Script(forward=[7.0], backward=[8.0])
    stats = script.run(repeats=1, warmup=0)
    assert (stats.forward.samples, stats.backward.samples) == ((7.0,), (8.0,))
    assert stats.forward.iqr == 0.0


@pytest.mark.parametrize(
    ("samples", "median", "q25", "q75"),
    [
        ((1.0, 2.0, 3.0, 4.0, 10.0), 3.0, 2.0, 4.0),
        ((4.0, 1.0, 3.0, 2.0), 2.5, 1.75, 3.25),
    ],
)
def test_median_and_iqr(samples, median, q25, q75):
    script = Script(forward=[99.0, *samples], backward=[0.0] * (len(samples) + 1))
    stats = script.run(repeats=len(samples), warmup=1)
    assert stats.forward.median == median
    assert (stats.forward.q25, stats.forward.q75) == (q25, q75)
    assert stats.forward.iqr == q75 - q25
    assert stats.forward.iqr == pytest.approx(np.subtract(*np.percentile(samples, [75, 25])))
    assert stats.backward == PhaseTiming((0.0,) * len(samples))


def test_clock_read_around_each_phase_and_gc_paused():
    seen_gc = []
    calls = []

    def forward():
        seen_gc.append(gc.isenabled())
        calls.append("forward")
        return None

    def backward(_):
        seen_gc.append(gc.isenabled())
        calls.append("backward")

    def clock():
        calls.append("clock")
        return 0.0

    assert gc.isenabled()
    time_forward_backward(forward, backward, repeats=2, warmup=0, clock=clock)
    assert calls == ["clock", "forward", "clock", "backward", "clock"] * 2
    assert seen_gc == [False] * 4
    assert gc.isenabled()


def test_cuda_is_synchronised_around_timed_regions(monkeypatch):
    events = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: events.append("sync"))
    time_forward_backward(
        lambda: events.append("forward"),
        lambda _: events.append("backward"),
        repeats=1,
        warmup=0,
        device="cuda:0",
        clock=lambda: events.append("clock") or 0.0,
    )
    assert events == ["sync", "clock", "forward", "sync", "clock", "backward", "sync", "clock"]


def test_exception_propagates_and_gc_restored():
    def forward():
        raise RuntimeError("solver failed")

    with pytest.raises(RuntimeError, match="solver failed"):
        time_forward_backward(forward, lambda _: None, repeats=1)
    assert gc.isenabled()


@pytest.mark.parametrize(("repeats", "warmup"), [(0, 1), (1, -1)])
def test_invalid_counts(repeats, warmup):
    with pytest.raises(ValueError):
        time_forward_backward(lambda: None, lambda _: None, repeats=repeats, warmup=warmup)


def test_real_forward_and_backward():
    w = torch.ones(3, requires_grad=True)

    def setup():
        w.grad = None

    stats = time_forward_backward(
        lambda: (w * 2.0).sum(), lambda loss: loss.backward(), repeats=3, warmup=1, setup=setup
    )
    assert torch.equal(w.grad, torch.full((3,), 2.0))  # one backward since the last setup
    assert (stats.repeats, stats.warmup) == (3, 1)
    assert len(stats.forward.samples) == len(stats.backward.samples) == 3
