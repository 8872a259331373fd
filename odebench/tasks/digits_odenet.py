"""Image classification with an ODE block (ODE-Net) on scikit-learn's 8x8 digits."""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from odebench.models.conv import ConvField
from odebench.tasks.base import Problem, Task, uniform

#: Images in the fixed batch; horizon of the ODE block.
BATCH, HORIZON = 32, 1.0


@functools.lru_cache(maxsize=1)
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled 8x8 digits (1797 images, no download): images in [0, 1], labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = torch.from_numpy(data.images).to(torch.float64) / 16.0
    return images.unsqueeze(1), torch.from_numpy(data.target).long()


class ClassifierLoss(nn.Module):
    """Cross-entropy of a fixed linear classifier on the globally average-pooled final state."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, labels: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        self.register_buffer("labels", labels)

    def forward(self, solution: torch.Tensor) -> torch.Tensor:
        pooled = solution[-1].mean(dim=(-2, -1))
        logits = pooled @ self.weight.T + self.bias
        return nn.functional.cross_entropy(logits, self.labels)


class DigitsODENet(Task):
    """ODE-Net on 8x8 digits: fixed encoder, ODE block with a conv field, fixed linear classifier.

    A batch of 32 images (picked by the seed from scikit-learn's bundled digits, no download)
    goes through a fixed encoder (3x3 convolution from 1 to C channels, random fan-in weights,
    tanh) to ``y0`` of shape ``(32, C, 8, 8)``; the ODE block ``dy/dt = f(y)`` over ``[0, 1]``
    has the conv field of `odebench.models.ConvField` (3x3 conv, GroupNorm, tanh, 3x3 conv,
    freshly initialised); the loss is the cross-entropy of a fixed random linear classifier on
    the average-pooled ``y(1)`` against the true labels. Only the ODE block is differentiated
    (encoder and classifier are part of the data and the loss).

    Probes: the image-classification setting: a large state (C * 64 per image) and a
    convolutional field, few steps, loss on the final state; the knob (channels C) scales the
    state, the parameters (about 18 C^2) and the memory of every method.
    """

    name = "digits_odenet"
    description = "ODE-Net (conv field, GroupNorm) on sklearn 8x8 digits, batch of 32, cross-entropy"
    paper = (
        "Zhuang et al., Adaptive Checkpoint Adjoint Method for Gradient Estimation in Neural ODE, ICML "
        "2020; Zheng et al., Improving Neural ODE Training with Temporal Adaptive Batch Normalization, "
        "NeurIPS 2024"
    )
    probes = "image ODE block: large state, conv field, final-time loss; channels scale state and params"
    size_knob = "channels"
    default_size = 8
    sizes = (4, 8, 16, 32)

    def _build(self, size, generator):
        channels = size
        images, labels = digits()
        pick = torch.randperm(len(images), generator=generator)[:BATCH]
        encoder = uniform(generator, (channels, 1, 3, 3), -1 / 3, 1 / 3)
        y0 = torch.tanh(nn.functional.conv2d(images[pick], encoder, padding=1))
        bound = 1 / math.sqrt(channels)
        weight = uniform(generator, (10, channels), -bound, bound)
        bias = uniform(generator, (10,), -bound, bound)
        func = ConvField(channels, norm_groups=min(4, channels), generator=generator)
        t = torch.tensor([0.0, HORIZON], dtype=torch.float64)
        loss = ClassifierLoss(weight, bias, labels[pick])
        return Problem(func=func, y0=y0, t=t, loss=loss, step_size=0.05)
