"""Batch normalisation inside an ODE field: time-invariant (plain BN) and temporal adaptive (TA-BN)."""

from __future__ import annotations

import math

import torch
from torch import nn

#: Normalisations a field can take by name: none, plain batch norm, temporal adaptive batch norm.
NORMS = ("none", "bn", "tabn")
#: TA-BN's grid intervals on the horizon (the published 100).
TABN_POINTS = 100


class TimeInvariantBatchNorm(nn.BatchNorm2d):
    """Plain ``BatchNorm2d`` called as ``norm(t, x)``: one pair of running statistics pooled over
    every time the solver evaluates (what ``nn.BatchNorm2d`` inside a torchdiffeq field does;
    the "Pop-TI BN" baseline of Zheng et al. 2024)."""

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)


class TemporalBatchNorm(nn.Module):
    """TA-BN: batch norm whose statistics and affine parameters live on a time grid.

    ``points + 1`` grid times ``t*_m = m T / points`` on ``[0, T]`` each hold running means and
    variances per channel and a learnt scale and shift. At a solver time ``t`` between ``t*_l``
    and ``t*_(l+1)`` the weights are ``w_l = (t*_(l+1) - t) / dt``, ``w_(l+1) = 1 - w_l``:

    * training: the batch is normalised by its own statistics; they update the two neighbours'
      running statistics with momentum ``eta * w`` each; scale and shift are interpolated;
    * evaluation: statistics, scale and shift are all interpolated from the grid.

    Times outside ``[0, T]`` use the nearest end. Statistics are per channel (axis 1) over every
    other axis. Reference: Zheng, Gao, Sun, Chen, Wang, Zhang, Wang & Yu (Algorithm 1),
    "Improving Neural ODE Training with Temporal Adaptive Batch Normalization", NeurIPS 2024;
    the published grid is 100 intervals on ``[0, 1]``, momentum 0.1.
    """

    def __init__(
        self,
        channels: int,
        *,
        points: int = TABN_POINTS,
        horizon: float = 1.0,
        momentum: float = 0.1,
        eps: float = 1e-5,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__()
        if points < 1 or horizon <= 0:
            raise ValueError(f"need points >= 1 and horizon > 0, got {points} and {horizon}")
        self.points, self.horizon, self.momentum, self.eps = points, horizon, momentum, eps
        shape = (points + 1, channels)
        self.weight = nn.Parameter(torch.ones(shape, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(shape, dtype=dtype))
        self.register_buffer("running_mean", torch.zeros(shape, dtype=dtype))
        self.register_buffer("running_var", torch.ones(shape, dtype=dtype))

    def neighbours(self, t: torch.Tensor) -> tuple[int, float, float]:
        """The grid interval ``l`` holding `t` and the weights ``(w_l, w_(l+1))``."""
        position = min(max(float(t.detach()) / self.horizon * self.points, 0.0), float(self.points))
        lower = min(math.floor(position), self.points - 1)
        upper_weight = position - lower
        return lower, 1.0 - upper_weight, upper_weight

    def _at(self, table: torch.Tensor, lower: int, w_low: float, w_up: float) -> torch.Tensor:
        return w_low * table[lower] + w_up * table[lower + 1]

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        lower, w_low, w_up = self.neighbours(t)
        axes = [a for a in range(x.dim()) if a != 1]
        shape = [1, -1] + [1] * (x.dim() - 2)
        if self.training:
            mean, var = x.mean(dim=axes), x.var(dim=axes, unbiased=False)
            with torch.no_grad():
                unbiased = var * (x.numel() / x.shape[1]) / max(x.numel() / x.shape[1] - 1, 1)
                for index, share in ((lower, w_low), (lower + 1, w_up)):
                    rate = self.momentum * share
                    self.running_mean[index].mul_(1 - rate).add_(rate * mean.detach())
                    self.running_var[index].mul_(1 - rate).add_(rate * unbiased)
        else:
            mean = self._at(self.running_mean, lower, w_low, w_up)
            var = self._at(self.running_var, lower, w_low, w_up)
        scale = self._at(self.weight, lower, w_low, w_up) / torch.sqrt(var + self.eps)
        shift = self._at(self.bias, lower, w_low, w_up) - mean * scale
        return x * scale.reshape(shape) + shift.reshape(shape)


class _NoNorm(nn.Module):
    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x


def time_norm(kind: str, channels: int, *, horizon: float = 1.0) -> nn.Module:
    """A normalisation called as ``norm(t, x)``: `kind` one of `NORMS`."""
    if kind == "none":
        return _NoNorm()
    if kind == "bn":
        return TimeInvariantBatchNorm(channels, dtype=torch.float64)
    if kind == "tabn":
        return TemporalBatchNorm(channels, horizon=horizon)
    raise ValueError(f"unknown normalisation {kind!r}; valid: {', '.join(NORMS)}")
