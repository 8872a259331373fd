"""The Nesterov field is the published first-order system in (x, m), and its coordinates map
features to states and back."""

from __future__ import annotations

import torch

from odebench.models.mlp import MLP
from odebench.models.nesterov import G_DAMPING, NesterovCoordinates, NesterovField

T = torch.tensor(0.3, dtype=torch.float64)


def test_readout_inverts_the_initial_state_and_the_momentum_starts_at_rest():
    coordinates = NesterovCoordinates(axis=1)
    h0 = torch.randn(3, 4, 2, 2, dtype=torch.float64)
    state = coordinates.initial_state(T, h0)
    assert state.shape == (3, 8, 2, 2) and torch.all(state[:, 4:] == 0)
    times = torch.stack([T, T + 0.5])
    features = coordinates.readout(times, torch.stack([state, state]))
    torch.testing.assert_close(features[0], h0, rtol=1e-15, atol=0)
    # k(t) = t^(-3/2) e^(t/2) at the system's time t + 1.
    k = lambda s: (s + 1) ** -1.5 * torch.exp((s + 1) / 2)
    torch.testing.assert_close(features[1], h0 * k(T + 0.5) / k(T), rtol=1e-14, atol=0)


def test_the_field_is_x_prime_m_and_m_prime_force_minus_m():
    force = MLP(2, 5, generator=torch.Generator().manual_seed(1))
    field = NesterovField(force)
    state = torch.randn(7, 4, dtype=torch.float64)
    x, m = state[:, :2], state[:, 2:]
    h = (T + 1) ** -1.5 * torch.exp((T + 1) / 2) * x
    derivative = field(T, state)
    torch.testing.assert_close(derivative[:, :2], m, rtol=0, atol=0)
    torch.testing.assert_close(derivative[:, 2:], force(T, h) - m, rtol=1e-15, atol=1e-15)
    general = NesterovField(force, generalized=True)(T, state)
    expected = torch.tanh(torch.tanh(force(T, h)) - m) - G_DAMPING * h
    torch.testing.assert_close(general, torch.cat([torch.tanh(m), expected], dim=-1), rtol=1e-15, atol=1e-15)
