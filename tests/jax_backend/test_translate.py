"""Every task's field and loss in JAX (the torch.export route) against torch, in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from odebench import tasks
from odebench.errors import UnsupportedError
from odebench.jax import missing

pytestmark = pytest.mark.skipif(missing() is not None, reason=f"JAX backend: {missing()}")


def _jax():
    from odebench.jax import translate
    from odebench.jax.program import jax_problem

    return translate, jax_problem


def _rel(got, want: torch.Tensor) -> float:
    got = torch.from_numpy(np.array(got))
    return ((got - want).norm() / want.norm()).item()


@pytest.mark.parametrize("name", tasks.names())
def test_field_and_loss_equal_torch(name):
    """At three random states and times the JAX field is the torch field to 1e-12 (relative), and
    the loss of a perturbed solution is the torch loss to 1e-12."""
    translate, jax_problem = _jax()
    problem = tasks.get(name).build()
    jp = jax_problem(problem)
    generator = torch.Generator().manual_seed(1)
    y0, t = problem.y0, problem.t
    for _ in range(3):
        y = y0 * (1 + 0.3 * torch.randn(y0.shape, generator=generator, dtype=torch.float64))
        s = t[0] + (t[-1] - t[0]) * torch.rand((), generator=generator, dtype=torch.float64)
        want = problem.func(s, y).detach()
        got = jp.field.fn(jp.field.params, translate.to_jax(s), translate.to_jax(y))
        assert _rel(got, want) < 1e-12
    noise = 1 + 0.1 * torch.randn(len(t), *y0.shape, generator=generator, dtype=torch.float64)
    solution = y0.unsqueeze(0) * noise
    want = problem.loss(solution).detach()
    got = jp.loss.fn(jp.loss.params, translate.to_jax(solution))
    assert abs(float(got) - want.item()) <= 1e-12 * abs(want.item())
    assert jp.field.trainable == tuple(n for n, _ in problem.func.named_parameters())


class _Erf(nn.Module):
    def forward(self, t, y):
        return torch.special.erf(y)


class _Branching(nn.Module):
    def forward(self, t, y):
        return y if y.sum() > 0 else -y


@pytest.mark.parametrize(
    "module, message",
    [(_Erf(), r"operation\(s\) the JAX translation lacks: aten\.erf"), (_Branching(), "cannot be exported")],
    ids=["unknown-operation", "data-dependent-branch"],
)
def test_untranslatable_modules_refused_in_one_line(module, message):
    translate, _ = _jax()
    with pytest.raises(UnsupportedError, match=message) as caught:
        translate.translate(
            module, (torch.tensor(0.0, dtype=torch.float64), torch.ones(3, dtype=torch.float64))
        )
    assert "\n" not in str(caught.value)


class _Ops(nn.Module):
    """Operations at their less common arguments: negative dims, keepdim, a reduction's dtype,
    softplus past its threshold."""

    def forward(self, t, y):
        a = torch.nn.functional.softplus(y, beta=2.0, threshold=5.0)
        b = y.sum(dim=-1, keepdim=True, dtype=torch.float64).expand(-1, 4)
        c = torch.cat([y[:, -1:], y[..., :-1]], dim=-1).unsqueeze(-1).squeeze(-1)
        return a + b * c.mean(dim=(-2, -1)) + torch.softmax(y, dim=-1)


def test_less_common_arguments_match_torch():
    translate, _ = _jax()
    y = 4 * torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    t = torch.tensor(0.0, dtype=torch.float64)
    module = _Ops()
    fn = translate.translate(module, (t, y))
    assert _rel(fn.fn(fn.params, translate.to_jax(t), translate.to_jax(y)), module(t, y)) < 1e-14


class _Pair(nn.Module):
    def forward(self, t, y):
        return y, -y


class _Counting(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, t, y):
        self.calls.add_(1)
        return y


@pytest.mark.parametrize("module", [_Pair(), _Counting()], ids=["tuple", "buffer-mutation"])
def test_a_field_must_return_one_tensor_and_change_nothing(module):
    translate, _ = _jax()
    with pytest.raises(UnsupportedError, match="must return one tensor and change no buffer"):
        translate.translate(
            module, (torch.tensor(0.0, dtype=torch.float64), torch.ones(3, dtype=torch.float64))
        )
