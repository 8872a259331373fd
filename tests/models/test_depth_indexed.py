"""A depth-indexed field solved by Euler with step 1/N is its ResNet, bitwise."""

from __future__ import annotations

import torch
from torchdiffeq import odeint

from odebench.models.depth_indexed import DepthIndexedMLP


def test_euler_with_step_one_over_n_is_the_resnet_and_the_interpolation_is_linear():
    depth, hidden, dim = 8, 5, 3
    g = torch.Generator().manual_seed(0)
    inner = torch.randn(depth, hidden, dim, generator=g, dtype=torch.float64)
    outer = torch.randn(depth, dim, hidden, generator=g, dtype=torch.float64)
    field = DepthIndexedMLP(inner, outer)
    x = torch.randn(4, dim, generator=g, dtype=torch.float64)
    times = torch.linspace(0, 1, depth + 1, dtype=torch.float64)
    euler = odeint(field, x, times, method="euler", options={"step_size": 1 / depth})[-1]
    resnet = x
    for n in range(depth):
        resnet = resnet + torch.tanh(resnet @ inner[n].T) @ outer[n].T / depth
    assert torch.equal(euler, resnet)
    w, v = field.layer(2.5 / depth)
    torch.testing.assert_close(w, (inner[2] + inner[3]) / 2)
    torch.testing.assert_close(v, (outer[2] + outer[3]) / 2)
    assert torch.equal(field.layer(1.0)[0], inner[-1])  # held at the last layer on [t_(N-1), 1]


def test_roughness_is_the_lipschitz_constant_in_depth():
    weights = torch.zeros(4, 1, 1, dtype=torch.float64)
    weights[2] = 0.5
    field = DepthIndexedMLP(weights, torch.zeros(4, 1, 1, dtype=torch.float64))
    assert field.roughness() == 4 * 0.5
