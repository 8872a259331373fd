"""Fit the last layer of a tanh MLP field by ridge regression: a "partly trained" field, cheaply.

A freshly initialised field has dynamics nothing like the data a task fits; gradients of such a
field say little about gradients during training. Fitting only the linear read-out to samples
of the target vector field (random features: the hidden layers keep their random weights) gives
in one least-squares solve a field whose flow resembles the target's (oscillating, chaotic,
...), deterministic and cheap enough to run in every `Task.build`.
"""

from __future__ import annotations

import torch
from torch import nn


def hidden_features(layers: nn.ModuleList, inputs: torch.Tensor) -> torch.Tensor:
    """The last hidden activations ``tanh(... tanh(W_1 x + b_1) ...)`` of a tanh MLP's `layers`.

    Computed in the dtype and on the device of `inputs` (the weights are cast to them).
    """
    h = inputs
    for layer in layers[:-1]:
        h = torch.tanh(nn.functional.linear(h, layer.weight.to(h), layer.bias.to(h)))
    return h


@torch.no_grad()
def fit_readout(
    layers: nn.ModuleList, inputs: torch.Tensor, targets: torch.Tensor, ridge: float = 1e-6
) -> float:
    """Set ``layers[-1]`` to the ridge least-squares map from the hidden features to `targets`.

    Solved in float64 on the CPU: ``min |H W^T + b - Y|^2 + ridge * N * |W|^2`` over the weight
    ``W`` and the (unpenalised) bias ``b``, then cast to the layer's dtype and device. Draws no
    random numbers.

    Args:
        layers: the `nn.Linear` layers of a tanh MLP (as `odebench.models.MLP.layers`).
        inputs: ``(N, in_features)`` inputs of the first layer (time appended where the field
            takes it).
        targets: ``(N, out_features)`` desired outputs.
        ridge: regularisation relative to the number of samples.

    Returns:
        The relative root-mean-square error of the fit on the samples.
    """
    x = inputs.to(dtype=torch.float64, device="cpu")
    y = targets.to(dtype=torch.float64, device="cpu")
    features = hidden_features(layers, x)
    mean_f, mean_y = features.mean(0), y.mean(0)
    centred = features - mean_f
    eye = torch.eye(features.shape[1], dtype=torch.float64)
    weight = torch.linalg.solve(centred.T @ centred + ridge * len(x) * eye, centred.T @ (y - mean_y)).T
    bias = mean_y - weight @ mean_f
    layers[-1].weight.copy_(weight)
    layers[-1].bias.copy_(bias)
    residual = features @ weight.T + bias - y
    return float(residual.norm() / y.norm())
