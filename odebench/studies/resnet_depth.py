"""Do ResNets discretise Neural ODEs? A ResNet of depth N against its ODE limit, N = 4 to 256."""

from __future__ import annotations

import abc

import torch
from torch import nn
from torchdiffeq import odeint

from odebench.claims import HIGHER, Claim, Metric, Part
from odebench.models.depth_indexed import DepthIndexedMLP
from odebench.studies.base import Data, Setup, Study
from odebench.tasks.base import normal

#: State dimension, hidden width of each residual function, training and held-out samples.
DIM, HIDDEN, SAMPLES = 16, 32, 100
#: The depths of the sweep (fixed steps 1/N of Euler's method on [0, 1]).
DEPTHS = (4, 8, 16, 32, 64, 128, 256)
#: Scale of the residual functions' output weights at initialisation (a small initial loss).
OUTER_SCALE = 0.5
#: Learning rate per layer: SGD's lr is this times N, so that the weights, as a function of
#: depth t = n/N, move at the same speed at every depth (each layer's gradient is O(1/N)).
LR_PER_LAYER = 0.5
#: rtol = atol of the accurate solve of the ResNet's ODE (dopri5, a step ending on every layer).
LIMIT_TOLERANCE = 1e-9
AUTHORS_CODE = (
    "michaelsdr/resnet_nodes (NeurIPS 2022 code); michaelsdr/implicit-regularization-resnets-nodes "
    "(the ICLR 2024 follow-up: V sigma(W x), d = 16, M = 32, lr proportional to N)"
)


#: The depths the claims compare: the deepest against 16, a 16-fold ratio (published: 1/16).
DEEP, SHALLOW = 256, 16
ITERATIONS = 200
_NEEDS = {
    "studies": ("resnet_smooth", "resnet_rough"),
    "methods": ("naive",),
    "step_sizes": tuple(1 / n for n in DEPTHS),
}
_AT_START = Metric("ode_distance", "output distance to the ODE at initialisation", window=(0, 1), log=True)
_AT_END = Metric(
    "ode_distance", "output distance to the ODE after training", window=(ITERATIONS - 1, ITERATIONS), log=True
)
_GRADIENT_AT_START = Metric(
    "gradient_distance", "gradient distance to the ODE's at initialisation", window=(0, 1), log=True
)
_ROUGHNESS_AT_END = Metric(
    "roughness", "Lipschitz constant in depth after training", window=(ITERATIONS - 1, ITERATIONS)
)


def _depths(study: str) -> tuple[dict, dict]:
    return {"study": study, "step_size": 1 / DEEP}, {"study": study, "step_size": 1 / SHALLOW}


def _deeper(study: str, metric: Metric, what: str) -> Part:
    """`metric` at depth `DEEP` over depth `SHALLOW`: 1/16 at rate 1/N."""
    treatment, control = _depths(study)
    return Part(
        f"{what}, {study}, N = {DEEP} vs {SHALLOW}", metric, treatment, control, published=SHALLOW / DEEP
    )


def _stays(study: str, metric: Metric, what: str) -> Part:
    """`metric` does not fall with depth: at `DEEP` at least half of its value at `SHALLOW`."""
    treatment, control = _depths(study)
    name = f"{what}, {study}, N = {DEEP} vs {SHALLOW} (does not fall: ratio above 1/2)"
    return Part(name, metric, treatment, control, direction=HIGHER, no_worse=True, negligible=1.0)


def _no_rougher(study: str) -> Part:
    """The Lipschitz constant in depth at `DEEP` at most twice that at `SHALLOW` (bounded in N)."""
    treatment, control = _depths(study)
    name = f"Lipschitz constant in depth after training, {study}, N = {DEEP} vs {SHALLOW}"
    name += " (bounded: ratio below 2)"
    return Part(name, _ROUGHNESS_AT_END, treatment, control, no_worse=True, negligible=1.0)


def depth_times(depth: int, like: torch.Tensor) -> torch.Tensor:
    """The layer times ``0, 1/N, ..., 1``: every output time is a layer boundary."""
    return torch.linspace(0.0, 1.0, depth + 1, dtype=like.dtype, device=like.device)


class ResNetDepth(Study):
    """Fit a linear map with a ResNet of depth N, ``x_(n+1) = x_n + V_n tanh(W_n x_n) / N``.

    The ResNet is Euler's method with step 1/N on the field whose weights interpolate the
    layers' (`odebench.models.DepthIndexedMLP`), so the run's step is its depth: ``--step-size
    1/N`` (the claims suite runs N = 4 to 256). Backprop through it (``naive``) is backprop
    through the ResNet; the gradient check compares it with the gradient of the ODE of the same
    weights (float64 dopri8 with a step ending on every layer), so ``grad_rel_error`` is the
    distance between the ResNet's gradient and its Neural ODE's. At each check the study also
    inspects ``ode_distance``, the relative distance between the ResNet's outputs and the ODE's
    (dopri5 at 1e-9, a step ending on every layer), ``gradient_distance``, that between their
    gradients over the interior layers (`distances` says why not the end ones), and
    ``roughness``, the weights' Lipschitz
    constant in depth, ``N max_n |theta_(n+1) - theta_n|``, and ``layer_step`` = 1/N, so that
    a claim can read a distance in units of 1/N (`odebench.claims.Metric` ``per``).

    Published setup (Sander, Ablin & Peyré 2022; the follow-up's code, Marion, Wu, Sander &
    Biau 2024): residual functions ``V sigma(W x)`` with d = 16 and M = 32, targets from Gaussian
    inputs, mean squared error, full-batch SGD with a learning rate proportional to N; the
    NeurIPS paper's implicit-regularisation experiment trains linear residuals ``A_n`` (d = 2,
    N = 100, zero start, target ``I + randn``, lr 100) and plots one entry of ``A_n`` against n.

    Here: d = 16, M = 32, 100 Gaussian inputs and 100 held out, target ``B x`` with ``B = I + G /
    (2 sqrt(d))`` (G standard normal: a small initial loss), tanh, SGD with lr 0.5 N for 200
    iterations, float64. The two studies differ only in the initial weights: ``resnet_smooth``
    samples each layer from one fixed smooth function of depth (``theta(t) = (C0 + C1 cos(pi
    t) + C2 sin(pi t)) / sqrt(3)``, the C's Gaussian and the same at every N: every depth
    discretises one ODE), ``resnet_rough`` draws every layer independently from the same
    Gaussian. Measured on the shared 2-core machine: a few seconds per run at N = 16, about 20 s
    at N = 256.
    """

    paper = (
        "Sander, Ablin & Peyré, Do Residual Neural Networks discretize Neural Ordinary Differential "
        "Equations?, NeurIPS 2022"
    )
    deviations = (
        "residual functions V tanh(W x) (the ICLR 2024 follow-up's; the implicit-regularisation "
        "theorem of the NeurIPS paper is for linear residual functions A_n x)",
        "a synthetic linear target in d = 16 instead of the paper's d = 2 regression and CIFAR/ImageNet",
        "distances as single numbers per depth (relative 2-norm), not the paper's plots",
    )
    solver = "euler"
    step_size = 1 / 16
    layer_per_step = True
    dtype = "float64"
    iterations = ITERATIONS
    eval_every = 100
    heldout_name = "heldout MSE"
    target_loss = 1e-3
    smooth = 10

    @abc.abstractmethod
    def _weights(self, generator: torch.Generator, depth: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Initial ``(W_n, V_n)`` of the N layers, shapes ``(N, M, d)`` and ``(N, d, M)``."""

    def data(self, generator):
        target = torch.eye(DIM, dtype=torch.float64) + normal(generator, (DIM, DIM)) / (2 * DIM**0.5)
        inputs, heldout = normal(generator, (SAMPLES, DIM)), normal(generator, (SAMPLES, DIM))
        train = (inputs, inputs @ target.T)
        return Data(batch=lambda iteration: train, heldout=(heldout, heldout @ target.T))

    def model(self, generator, *, depth: int):
        return nn.ModuleDict({"field": DepthIndexedMLP(*self._weights(generator, depth))})

    def optimizer(self, params, depth: int):
        """SGD at `LR_PER_LAYER` times the depth N (the follow-up's lr proportional to N): each
        layer's gradient is O(1/N), so the weights move at the same speed at every depth."""
        return torch.optim.SGD(params, lr=LR_PER_LAYER * depth)

    def setup(self, model, data) -> Setup:
        depth = model.field.depth

        def inspect() -> dict[str, float]:
            field = _resnet(model)
            return {
                **distances(field, *data.batch(0)),
                "roughness": field.roughness(),
                "layer_step": 1 / depth,
            }

        return Setup(
            model=model,
            batch=data.batch,
            heldout=data.heldout,
            optimizer=lambda params: self.optimizer(params, depth),
            inspect=inspect,
        )

    def _outputs(self, model, solve, inputs: torch.Tensor) -> torch.Tensor:
        return solve(model.field, inputs, depth_times(_resnet(model).depth, inputs))[-1]

    def loss(self, model, solve, batch):
        inputs, targets = batch
        return (self._outputs(model, solve, inputs) - targets).pow(2).mean()

    def evaluate(self, model, solve, heldout):
        inputs, targets = heldout
        return (self._outputs(model, solve, inputs) - targets).pow(2).mean().item()


def _resnet(model: nn.Module) -> DepthIndexedMLP:
    """The model's field, unwrapped from the training loop's evaluation counter where it is wrapped."""
    return getattr(model.field, "func", model.field)


def _solve(field: DepthIndexedMLP, inputs: torch.Tensor, *, limit: bool) -> torch.Tensor:
    """The ResNet's outputs (Euler, step 1/N) or, with `limit`, its ODE's (dopri5 at
    `LIMIT_TOLERANCE`, a step ending on every layer)."""
    times = depth_times(field.depth, inputs)
    if not limit:
        return odeint(field, inputs, times, method="euler", options={"step_size": 1 / field.depth})[-1]
    tolerance = LIMIT_TOLERANCE
    return odeint(
        field, inputs, times, method="dopri5", rtol=tolerance, atol=tolerance, options={"step_t": times}
    )[-1]


def distances(field: DepthIndexedMLP, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """The ResNet against its ODE, from one solve of each (with autograd):

    * ``ode_distance``: relative 2-norm distance between their outputs;
    * ``gradient_distance``: between backprop's gradient through the ResNet and the ODE's
      (autograd through the accurate solve), over the interior layers 1 to N - 2. The end layers
      are left out: Euler's left-point rule weighs every layer by 1/N, where the ODE's linear
      interpolation weighs the first by 1/(2N) and the last by 3/(2N), a difference of order
      1/sqrt(N) in the relative norm that has nothing to do with smoothness in depth (the
      training loop's ``grad_rel_error`` keeps them).
    """
    outputs, gradients = [], []
    for limit in (False, True):
        with torch.enable_grad():
            out = _solve(field, inputs, limit=limit)
            loss = (out - targets).pow(2).mean()
            grads = torch.autograd.grad(loss, [field.inner, field.outer])
        outputs.append(out.detach())
        gradients.append(torch.cat([g[1:-1].flatten() for g in grads]))

    def relative(pair: list[torch.Tensor]) -> float:
        resnet, limit = pair
        return float((resnet - limit).norm() / limit.norm())

    return {"ode_distance": relative(outputs), "gradient_distance": relative(gradients)}


def _smooth_in_depth(
    generator: torch.Generator, depth: int, shape: tuple[int, ...], scale: float
) -> torch.Tensor:
    """``theta(n/N)`` for n < N of ``theta(t) = scale (C0 + C1 cos(pi t) + C2 sin(pi t)) / sqrt(3)``."""
    coefficients = normal(generator, (3, *shape)) * scale / 3**0.5
    t = torch.arange(depth, dtype=torch.float64) / depth * torch.pi
    basis = torch.stack([torch.ones_like(t), torch.cos(t), torch.sin(t)], dim=1)
    return torch.einsum("nk,k...->n...", basis, coefficients)


class ResNetSmooth(ResNetDepth):
    __doc__ = ResNetDepth.__doc__

    name = "resnet_smooth"
    description = "depth-N ResNet (Euler step 1/N), weights sampled from one smooth function of depth"
    claims = (
        Claim(
            sentence="With weights smooth in depth, a depth-N ResNet's outputs approach those of its "
            "Neural ODE at rate 1/N.",
            source="Sander, Ablin & Peyré 2022, abstract and section 3 (distance between a ResNet and "
            "its Neural ODE); " + AUTHORS_CODE,
            published="a distance of order 1/N for residual functions smooth in depth (a bound, no "
            "figure for this setup)",
            parts=(_deeper("resnet_smooth", _AT_START, "output distance"),),
            needs=_NEEDS,
        ),
        Claim(
            sentence="Backprop through a ResNet gives the gradient of its Neural ODE (the adjoint's) "
            "only when the weights are smooth in depth: the distance between them falls like 1/N for "
            "smooth weights and does not go to 0 for weights drawn independently per layer.",
            source="Sander, Ablin & Peyré 2022, section 4 (the adjoint method on ResNets) and the "
            "gradient comparison of their code (resnet_cifar/compare_gradients.py); " + AUTHORS_CODE,
            published="gradient error falling with depth for ODE-like ResNets (a figure, relative MSE "
            "per tensor, depths 4-64); none for independent weights",
            parts=(
                _deeper("resnet_smooth", _GRADIENT_AT_START, "gradient distance"),
                _stays("resnet_rough", _GRADIENT_AT_START, "gradient distance"),
            ),
            needs=_NEEDS,
        ),
        Claim(
            sentence="Trained by gradient descent from a small initial loss, the weights stay smooth "
            "in depth (a Lipschitz constant in depth bounded in N) and the trained ResNet stays within "
            "O(1/N) of its Neural ODE.",
            source="Sander, Ablin & Peyré 2022, abstract and section 5 (implicit regularisation, linear "
            "residual functions; figure 2); " + AUTHORS_CODE,
            published="a theorem for linear residual functions; figure 2 shows one weight entry "
            "against depth after training (smooth)",
            parts=(
                _no_rougher("resnet_smooth"),
                _deeper("resnet_smooth", _AT_END, "output distance after training"),
            ),
            needs=_NEEDS,
        ),
    )

    def _weights(self, generator, depth):
        inner = _smooth_in_depth(generator, depth, (HIDDEN, DIM), 1 / DIM**0.5)
        outer = _smooth_in_depth(generator, depth, (DIM, HIDDEN), OUTER_SCALE / HIDDEN**0.5)
        return inner, outer


class ResNetRough(ResNetDepth):
    __doc__ = ResNetDepth.__doc__

    name = "resnet_rough"
    description = "depth-N ResNet (Euler step 1/N), every layer's weights drawn independently"

    def _weights(self, generator, depth):
        inner = normal(generator, (depth, HIDDEN, DIM)) / DIM**0.5
        outer = normal(generator, (depth, DIM, HIDDEN)) * OUTER_SCALE / HIDDEN**0.5
        return inner, outer
