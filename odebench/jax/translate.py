"""A torch module as a JAX function: its ``torch.export`` ATen graph run by a small interpreter.

One generic route serves every task's field and loss and a user's model alike: the module is
exported once (`torch.export.export`, which records every operation with its values and shapes),
and `translate` returns a pure function of the module's parameters and inputs that evaluates the
same graph with ``jax.numpy``. Buffers and constant tensors become constants of the function;
parameters are a dict keyed by ``named_parameters()`` names, the layout odebench's gradients use.

The interpreter knows the operations in `OPERATIONS`. A graph with others is decomposed to core
ATen (`ExportedProgram.run_decompositions`) and tried again; what is still unknown is refused in
one line naming the operations and the module (`UnsupportedError`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from odebench.errors import UnsupportedError
from odebench.jax import load

jax = load()
jnp = jax.numpy
lax = jax.lax

aten = torch.ops.aten


def _dim(dim: int, ndim: int) -> int:
    return dim + ndim if dim < 0 else dim


def _slice(x, dim=0, start=None, end=None, step=1):
    index = [slice(None)] * x.ndim
    index[_dim(dim, x.ndim)] = slice(start, end, step)
    return x[tuple(index)]


def _expand(x, size, implicit=False):
    ndim = len(size)
    shape = [x.shape[i - (ndim - x.ndim)] if s == -1 else s for i, s in enumerate(size)]
    return jnp.broadcast_to(x, shape)


def _reduce(reduction):
    def apply(x, dim=None, keepdim=False, dtype=None):
        axis = None if dim is None or dim == [] else tuple(_dim(d, x.ndim) for d in np.atleast_1d(dim))
        return reduction(_as(x, dtype), axis=axis, keepdims=keepdim)

    return apply


def _conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)
    pad = padding if isinstance(padding, str) else [(p, p) for p in pair(padding)]
    out = lax.conv_general_dilated(
        x,
        weight,
        window_strides=pair(stride),
        padding=pad.upper() if isinstance(pad, str) else pad,
        rhs_dilation=pair(dilation),
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
        feature_group_count=groups,
        precision=lax.Precision.HIGHEST,
    )
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


def _group_norm(x, groups, weight=None, bias=None, eps=1e-5, cudnn_enabled=True):
    n, c = x.shape[:2]
    grouped = x.reshape(n, groups, -1)
    mean = grouped.mean(-1, keepdims=True)
    var = ((grouped - mean) ** 2).mean(-1, keepdims=True)
    out = ((grouped - mean) / jnp.sqrt(var + eps)).reshape(x.shape)
    affine = (1, c) + (1,) * (x.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(affine)
    return out if bias is None else out + bias.reshape(affine)


def _cross_entropy(logits, target, weight=None, reduction=1, ignore_index=-100, label_smoothing=0.0):
    if weight is not None or label_smoothing or target.dtype.kind == "f":
        raise UnsupportedError("cross_entropy with class weights, smoothing or soft targets")
    log_p = jax.nn.log_softmax(logits, axis=1)
    picked = -jnp.take_along_axis(log_p, jnp.expand_dims(target, 1), axis=1).squeeze(1)
    keep = target != ignore_index
    picked = jnp.where(keep, picked, 0.0)
    if reduction == 0:
        return picked
    return picked.sum() if reduction == 2 else picked.sum() / keep.sum()


def _matmul(a, b):
    return jnp.matmul(a, b, precision=lax.Precision.HIGHEST)


def _linear(x, weight, bias=None):
    out = _matmul(x, weight.T)
    return out if bias is None else out + bias


def _alpha(op):
    return lambda a, b, alpha=1: op(a, b * alpha if alpha != 1 else b)


def _cast(x, *args, dtype=None, **kwargs):
    dtypes = [a for a in args if isinstance(a, torch.dtype)]
    return _as(x, dtype or (dtypes[0] if dtypes else None))


_DTYPES = {
    torch.float64: np.float64,
    torch.float32: np.float32,
    torch.float16: np.float16,
    torch.bfloat16: jnp.bfloat16,
    torch.int64: np.int64,
    torch.int32: np.int32,
    torch.bool: np.bool_,
}


def _as(x, dtype):
    """`x` in torch dtype `dtype` (None: unchanged)."""
    if dtype is None:
        return x
    if dtype not in _DTYPES:
        raise UnsupportedError(f"dtype {dtype} in the JAX translation; valid: {', '.join(map(str, _DTYPES))}")
    return x.astype(_DTYPES[dtype])


#: ATen operation -> its JAX evaluation, with ATen's argument order and defaults.
OPERATIONS: dict[Any, Callable[..., Any]] = {
    aten.linear.default: _linear,
    aten.matmul.default: _matmul,
    aten.mm.default: _matmul,
    aten.bmm.default: _matmul,
    aten.addmm.default: lambda c, a, b, beta=1, alpha=1: beta * c + alpha * _matmul(a, b),
    aten.numpy_T.default: lambda x: x.T,
    aten.t.default: lambda x: x.T,
    aten.transpose.int: lambda x, a, b: jnp.swapaxes(x, a, b),
    aten.permute.default: lambda x, dims: jnp.transpose(x, dims),
    aten.add.Tensor: _alpha(jnp.add),
    aten.sub.Tensor: _alpha(jnp.subtract),
    aten.rsub.Scalar: lambda a, b, alpha=1: b - alpha * a,
    aten.rsub.Tensor: lambda a, b, alpha=1: b - alpha * a,
    aten.mul.Tensor: jnp.multiply,
    aten.div.Tensor: jnp.divide,
    aten.neg.default: jnp.negative,
    aten.pow.Tensor_Scalar: jnp.power,
    aten.pow.Tensor_Tensor: jnp.power,
    aten.tanh.default: jnp.tanh,
    aten.sigmoid.default: jax.nn.sigmoid,
    aten.relu.default: jax.nn.relu,
    aten.softplus.default: lambda x, beta=1, threshold=20: jnp.where(
        beta * x > threshold, x, jax.nn.softplus(beta * x) / beta
    ),
    aten.exp.default: jnp.exp,
    aten.log.default: jnp.log,
    aten.sqrt.default: jnp.sqrt,
    aten.sin.default: jnp.sin,
    aten.cos.default: jnp.cos,
    aten.abs.default: jnp.abs,
    aten.softmax.int: lambda x, dim, dtype=None: jax.nn.softmax(_as(x, dtype), axis=dim),
    aten._softmax.default: lambda x, dim, half_to_float=False: jax.nn.softmax(x, axis=dim),
    aten.sum.default: _reduce(jnp.sum),
    aten.sum.dim_IntList: _reduce(jnp.sum),
    aten.mean.default: _reduce(jnp.mean),
    aten.mean.dim: _reduce(jnp.mean),
    aten.select.int: lambda x, dim, index: jnp.take(x, index, axis=dim),
    aten.slice.Tensor: _slice,
    aten.stack.default: lambda xs, dim=0: jnp.stack(xs, axis=dim),
    aten.cat.default: lambda xs, dim=0: jnp.concatenate(xs, axis=dim),
    aten.expand.default: _expand,
    aten.unsqueeze.default: jnp.expand_dims,
    aten.squeeze.dim: lambda x, dim: jnp.squeeze(x, dim) if x.shape[dim] == 1 else x,
    aten.view.default: jnp.reshape,
    aten.reshape.default: jnp.reshape,
    aten._unsafe_view.default: jnp.reshape,
    aten.flatten.using_ints: lambda x, start=0, end=-1: x.reshape(
        (*x.shape[: _dim(start, x.ndim)], -1, *x.shape[_dim(end, x.ndim) + 1 :])
    ),
    aten.unflatten.int: lambda x, dim, sizes: x.reshape(
        x.shape[: _dim(dim, x.ndim)] + tuple(sizes) + x.shape[_dim(dim, x.ndim) + 1 :]
    ),
    aten.diagonal.default: lambda x, offset=0, dim1=0, dim2=1: jnp.diagonal(x, offset, dim1, dim2),
    aten.clone.default: lambda x, memory_format=None: x,
    aten.alias.default: lambda x: x,
    aten.detach.default: lax.stop_gradient,
    aten.to.device: _cast,
    aten.to.dtype: _cast,
    aten._to_copy.default: _cast,
    aten._assert_tensor_metadata.default: lambda *args, **kwargs: None,
    aten.conv2d.default: _conv2d,
    aten.group_norm.default: _group_norm,
    aten.cross_entropy_loss.default: _cross_entropy,
}


@dataclass(frozen=True)
class Translated:
    """A module as ``fn(params, *inputs)``; `params` holds its parameters' values (float64 JAX
    arrays keyed by ``named_parameters()`` name) and `trainable` the names that require grad."""

    fn: Callable[..., Any]
    params: dict[str, Any]
    trainable: tuple[str, ...]
    operations: tuple[str, ...]


def to_jax(x: torch.Tensor):
    """A torch tensor as a JAX array of the same dtype and values (a copy)."""
    return jnp.asarray(x.detach().cpu().numpy())


def translate(
    module: nn.Module, example_inputs: Sequence[torch.Tensor], *, name: str = "module"
) -> Translated:
    """`module` as a JAX function of its parameters and inputs of `example_inputs`' shapes.

    Raises `UnsupportedError` in one line naming the operations the interpreter lacks, or why
    ``torch.export`` could not capture the module.
    """
    try:
        with warnings.catch_warnings():  # torch.export's own deprecation notices, not the module's
            warnings.simplefilter("ignore", FutureWarning)
            exported = torch.export.export(module, tuple(example_inputs), strict=False)
    except Exception as exc:  # export's own errors span many types and many lines
        raise UnsupportedError(
            f"{name} cannot be exported by torch.export for JAX: {_first_line(exc)}"
        ) from None
    if _unknown(exported):
        try:
            exported = exported.run_decompositions()
        except Exception as exc:
            raise UnsupportedError(
                f"{name} cannot be decomposed to core ATen for JAX: {_first_line(exc)}"
            ) from None
    outputs = [spec.kind.name for spec in exported.graph_signature.output_specs]
    if outputs != ["USER_OUTPUT"]:
        raise UnsupportedError(
            f"{name} must return one tensor and change no buffer for JAX; it returns {', '.join(outputs)}"
        )
    unknown = _unknown(exported)
    if unknown:
        raise UnsupportedError(
            f"{name} uses operation(s) the JAX translation lacks: {', '.join(sorted(unknown))}"
        )
    return _interpreter(module, exported)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _unknown(exported) -> set[str]:
    return {
        str(node.target)
        for node in exported.graph.nodes
        if node.op == "call_function" and node.target not in OPERATIONS
    }


def _interpreter(module: nn.Module, exported) -> Translated:
    from torch.export.graph_signature import InputKind

    signature = exported.graph_signature
    constants: dict[str, Any] = {}
    parameter_of: dict[str, str] = {}
    user_inputs: list[str] = []
    for spec in signature.input_specs:
        if spec.kind == InputKind.PARAMETER:
            parameter_of[spec.arg.name] = spec.target
        elif spec.kind == InputKind.USER_INPUT:
            user_inputs.append(spec.arg.name)
        else:
            value = exported.constants.get(spec.target, exported.state_dict.get(spec.target))
            constants[spec.arg.name] = to_jax(value)
    nodes = list(exported.graph.nodes)
    operations = tuple(sorted({str(n.target) for n in nodes if n.op == "call_function"}))

    def fn(params, *inputs):
        env = dict(constants)
        env.update({arg: params[target] for arg, target in parameter_of.items()})
        env.update(zip(user_inputs, inputs))

        def value(a):
            if isinstance(a, torch.fx.Node):
                return env[a.name]
            if isinstance(a, (list, tuple)):
                return type(a)(value(x) for x in a)
            if isinstance(a, dict):
                return {k: value(x) for k, x in a.items()}
            return a

        for node in nodes:
            if node.op == "call_function":
                env[node.name] = OPERATIONS[node.target](*value(node.args), **value(dict(node.kwargs)))
            elif node.op == "output":
                (result,) = value(node.args[0])
                return result
        raise AssertionError("exported graph has no output")

    params = {name: to_jax(p) for name, p in module.named_parameters()}
    trainable = tuple(name for name, p in module.named_parameters() if p.requires_grad)
    return Translated(fn, params, trainable, operations)


__all__ = ["OPERATIONS", "Translated", "to_jax", "translate"]
