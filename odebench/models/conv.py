"""A small convolutional vector field on C-channel feature maps (the ODE block of ODE-Nets)."""

from __future__ import annotations

import math

import torch
from torch import nn

from odebench.models.temporal_batch_norm import time_norm


class ConvField(nn.Module):
    """``f(t, y) = conv2(tanh(norm(conv1([y, t]))))`` on maps of shape ``(batch, C, H, W)``.

    Both convolutions are 3x3 with padding 1, ``C -> C`` channels (``C + 1 -> C`` for the first
    with `time_input`, which appends ``t`` as a constant channel, the "concat" layer of the
    Neural ODE paper's ODE-Net). `norm_groups` adds a GroupNorm with that many groups (affine,
    learnable) before the tanh; None leaves it out.

    Args:
        channels: C, channels in and out.
        time_input: append ``t`` as an extra input channel of the first convolution.
        norm_groups: groups of the optional GroupNorm (must divide `channels`).
        generator: draws the initial weights, fan-in uniform ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``
            (PyTorch's default bound for convolutions); GroupNorm starts at weight 1, bias 0.

    The parameters are float64 on the CPU; ``.to(dtype, device)`` rounds them (as `Task.build` does).

    Reference: the ODE block of Chen et al., Neural Ordinary Differential Equations, NeurIPS
    2018, as used for image classification by Zhuang et al. (ACA), ICML 2020.
    """

    def __init__(
        self,
        channels: int,
        *,
        time_input: bool = False,
        norm_groups: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if norm_groups is not None and channels % norm_groups:
            raise ValueError(f"norm_groups ({norm_groups}) must divide channels ({channels})")
        self.channels, self.time_input = channels, time_input
        self.conv1 = nn.utils.skip_init(
            nn.Conv2d, channels + int(time_input), channels, 3, padding=1, dtype=torch.float64
        )
        self.norm = None if norm_groups is None else nn.GroupNorm(norm_groups, channels, dtype=torch.float64)
        self.conv2 = nn.utils.skip_init(nn.Conv2d, channels, channels, 3, padding=1, dtype=torch.float64)
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Fan-in uniform initialisation from `generator` (a fresh seed-0 one when None)."""
        if generator is None:
            generator = torch.Generator(device="cpu").manual_seed(0)
        for conv in (self.conv1, self.conv2):
            bound = 1.0 / math.sqrt(conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1])
            for p in (conv.weight, conv.bias):
                draw = torch.rand(p.shape, generator=generator, dtype=torch.float64)
                p.copy_((2 * draw - 1) * bound)
        if self.norm is not None:
            self.norm.reset_parameters()

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = y
        if self.time_input:
            h = torch.cat([y, t.to(y).expand(y.shape[0], 1, *y.shape[2:])], dim=1)
        h = self.conv1(h)
        if self.norm is not None:
            h = self.norm(h)
        return self.conv2(torch.tanh(h))


class ConvStackField(nn.Module):
    """``f(t, y) = L_k(t, ... L_1(t, y))`` with ``L_i(t, h) = tanh(norm_i(t, conv_i(h)))``: `layers`
    stacked 3x3 convolutions ``C -> C``, each normalised by `norm` (a name in
    `odebench.models.temporal_batch_norm.NORMS`: none, plain batch norm, or TA-BN, whose grid
    covers ``[0, horizon]``). The field of the depth study of Zheng et al. 2024 (TA-BN), which
    stacks convolutions with batch norm inside one ODE block. Initial weights fan-in uniform
    from `generator`, as `ConvField`.
    """

    def __init__(
        self,
        channels: int,
        layers: int,
        *,
        norm: str = "none",
        horizon: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        self.channels, self.norm_kind = channels, norm
        self.convs = nn.ModuleList(
            nn.utils.skip_init(nn.Conv2d, channels, channels, 3, padding=1, dtype=torch.float64)
            for _ in range(layers)
        )
        self.norms = nn.ModuleList(time_norm(norm, channels, horizon=horizon) for _ in range(layers))
        if generator is None:
            generator = torch.Generator(device="cpu").manual_seed(0)
        with torch.no_grad():
            bound = 1.0 / math.sqrt(channels * 9)
            for conv in self.convs:
                for p in (conv.weight, conv.bias):
                    p.copy_((2 * torch.rand(p.shape, generator=generator, dtype=torch.float64) - 1) * bound)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = y
        for conv, norm in zip(self.convs, self.norms):
            h = torch.tanh(norm(t, conv(h)))
        return h
