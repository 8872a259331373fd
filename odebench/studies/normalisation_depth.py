"""Batch norm inside an ODE field against depth: none, plain BN and temporal adaptive BN (TA-BN)."""

from __future__ import annotations

import torch

from odebench.claims import HIGHER, Claim, Metric, Part
from odebench.models.conv import ConvStackField
from odebench.models.temporal_batch_norm import NORMS
from odebench.studies.digits_classification import CHANNELS, DigitsODENet
from odebench.tasks.digits_odenet import HORIZON

#: Convolution layers stacked in the field.
LAYERS = (1, 2, 4)
#: What each normalisation is called in study names and tables.
NORM_LABELS = {"none": "no BN", "bn": "plain BN", "tabn": "TA-BN"}
PAPER = (
    "Zheng, Gao, Sun, Chen, Wang, Zhang, Wang & Yu, Improving Neural ODE Training with Temporal "
    "Adaptive Batch Normalization, NeurIPS 2024"
)


def study_name(norm: str, layers: int) -> str:
    """``digits_<norm>_<layers>``: the digits ODE-Net with that field."""
    return f"digits_{norm}_{layers}"


_ERROR = Metric("heldout", "test error")
DEEPEST, SHALLOWEST = max(LAYERS), min(LAYERS)


def _versus(name: str, treatment: str, control: str, **kw) -> Part:
    return Part(name, _ERROR, treatment={"study": treatment}, control={"study": control}, **kw)


class DigitsNormalisedStack(DigitsODENet):
    """The digits ODE-Net whose block stacks `layers` convolutions with normalisation `norm`.

    Published setup (Zheng et al. 2024, image classification, section 5 and appendix A.1; no
    public code found): a single "unmixed" Neural ODE on the image followed by one linear
    layer, its field a stack of 3x3 convolutions (4 to 18 layers) each with batch norm; dopri5
    at a tolerance of 1e-3 on ``[0, 1]``; AdamW with lr 1e-3, batch 256, 128 epochs; TA-BN with
    100 grid intervals. Depth figures (CIFAR-10, figures 1 and 6): without BN, training fails
    above 10 layers; with TA-BN, accuracy keeps rising to 18 layers (91.1 % with 2.2M
    parameters); plain ("Pop-TI") BN, whose running statistics pool every time of the solve,
    gives erratic test accuracy (33.2 % against TA-BN's 87.4 % for 8 layers with dopri5, table 4).

    Here: the digits ODE-Net of `DigitsODENet` (conv encoder to 8 channels on 4x4 maps, pooled
    linear head), its block ``ConvStackField`` (`odebench.models.ConvStackField`: each layer a
    3x3 convolution, the normalisation, tanh) with 1, 2 or 4 layers and no normalisation, plain
    BN or TA-BN; dopri5 at rtol = atol = 1e-3, AdamW lr 1e-3, batch 256, 300 iterations (about
    59 epochs of the 1297 training images), backprop through the solver; the test error in
    evaluation mode (running statistics), as published. No gradient check (see
    `reference_tolerance`).
    """

    paper = PAPER
    deviations = (
        "8x8 digits (1297 training, 500 test images) instead of CIFAR-10; no augmentation",
        "1, 2 and 4 convolution layers of 8 channels on 4x4 maps (published: 4 to 18 layers, 32 to 256 "
        "channels, down- and up-sampling)",
        "300 iterations (about 59 epochs) instead of 128 epochs",
        "no L2 penalty on TA-BN's scales and shifts (its weight is not published)",
        "the paper does not name its gradient method: backprop through the solver here",
    )
    solver = "dopri5"
    rtol = 1e-3
    atol = 1e-3
    iterations = 300
    eval_every = 100
    target_loss = 0.3
    smooth = 10
    batch_size = 256
    #: No gradient check: the claim is about accuracy against depth, and the kinks of TA-BN's
    #: interpolated scales in t cost dopri8 minutes of rejected steps per reference (measured
    #: 170-200 s per check at 1e-7 and 1e-10 on the 4-layer field).
    reference_tolerance = None

    def __init__(self, norm: str, layers: int) -> None:
        if norm not in NORMS:
            raise ValueError(f"unknown normalisation {norm!r}; valid: {', '.join(NORMS)}")
        self.norm, self.layers = norm, layers
        self.name = study_name(norm, layers)
        self.description = (
            f"digits ODE-Net, {layers} conv layer(s) with {NORM_LABELS[norm]} in the field "
            "(dopri5 1e-3, AdamW, batch 256)"
        )
        if norm == "tabn" and layers == DEEPEST:
            self.claims = (
                Claim(
                    sentence="Temporal adaptive batch norm lets an ODE field stack more layers and keep "
                    "improving, where plain batch norm inside the field degrades.",
                    source="Zheng et al. 2024, abstract, figures 1 and 6 (CIFAR-10 accuracy against depth) "
                    "and table 4",
                    published="TA-BN's accuracy rising to 18 layers (91.1 % on CIFAR-10); plain BN 33.2 % "
                    "against TA-BN 87.4 % at 8 layers (dopri5)",
                    parts=(
                        _versus(
                            f"TA-BN, {DEEPEST} layers vs {SHALLOWEST}",
                            study_name("tabn", DEEPEST),
                            study_name("tabn", SHALLOWEST),
                        ),
                        _versus(
                            f"{DEEPEST} layers, TA-BN vs plain BN",
                            study_name("tabn", DEEPEST),
                            study_name("bn", DEEPEST),
                        ),
                        _versus(
                            f"plain BN, {DEEPEST} layers vs {SHALLOWEST} (degrades: higher)",
                            study_name("bn", DEEPEST),
                            study_name("bn", SHALLOWEST),
                            direction=HIGHER,
                        ),
                    ),
                    needs={
                        "studies": tuple(study_name(n, k) for n in NORMS for k in (SHALLOWEST, DEEPEST)),
                        "methods": ("naive",),
                    },
                ),
            )

    def block(self, generator):
        return (ConvStackField(CHANNELS, self.layers, norm=self.norm, horizon=HORIZON, generator=generator),)

    def optimizer(self, params):
        return torch.optim.AdamW(params, lr=1e-3)


STUDIES = tuple(DigitsNormalisedStack(norm, layers) for norm in NORMS for layers in LAYERS)
