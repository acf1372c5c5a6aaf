"""Normalisation written out in primitive ops, so that a reverse pass through a JVP is exact.

PyTorch's forward-mode formula for a train-mode normalisation builds the output tangent from the
op's saved batch statistics, through which its reverse-mode formula passes no gradient. Reverse
mode through a JVP (the "rof" rule of `metakit.meta.rules`) therefore drops the term through the
batch statistics wherever φ changes the input of a train-mode normalisation (MFM's modulation
after a block, with more BatchNorms downstream). Under `primitive_norms` batch, layer, group and
instance norm run as mean, var and rsqrt, exact both ways; tests/test_rof.py pins the error and
the fix. The derivation and its PyTorch source: docs/guide/design_notes.md.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode


def _affine(out: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, shape) -> torch.Tensor:
    if weight is not None:
        out = out * weight.view(shape)
    return out if bias is None else out + bias.view(shape)


def _normalise(x: torch.Tensor, dims: tuple[int, ...], eps: float) -> torch.Tensor:
    """(x − mean) / sqrt(var + eps) over ``dims``, biased variance, from differentiable primitives."""
    mean = x.mean(dims, keepdim=True)
    var = (x - mean).pow(2).mean(dims, keepdim=True)
    return (x - mean) * torch.rsqrt(var + eps)


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """`F.batch_norm` from primitives; running statistics are read (eval) but never updated."""
    shape = (1, -1) + (1,) * (x.dim() - 2)                                   # broadcast (C,) over (B, C, ...)
    if training or running_mean is None:
        out = _normalise(x, (0, *range(2, x.dim())), eps)
    else:
        out = (x - running_mean.view(shape)) * torch.rsqrt(running_var.view(shape) + eps)
    return _affine(out, weight, bias, shape)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """`F.layer_norm` from primitives."""
    dims = tuple(range(x.dim() - len(normalized_shape), x.dim()))
    return _affine(_normalise(x, dims, eps), weight, bias, tuple(normalized_shape))


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    """`F.group_norm` from primitives."""
    grouped = x.reshape(x.shape[0], num_groups, -1)                           # (B, G, C/G · spatial)
    out = _normalise(grouped, (2,), eps).reshape(x.shape)
    return _affine(out, weight, bias, (1, -1) + (1,) * (x.dim() - 2))


def instance_norm(x, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """`F.instance_norm` from primitives (per sample and channel); running statistics never updated."""
    shape = (1, -1) + (1,) * (x.dim() - 2)
    if use_input_stats or running_mean is None:
        out = _normalise(x, tuple(range(2, x.dim())), eps)
    else:
        out = (x - running_mean.view(shape)) * torch.rsqrt(running_var.view(shape) + eps)
    return _affine(out, weight, bias, shape)


REPLACED = {F.batch_norm: batch_norm, F.layer_norm: layer_norm, F.group_norm: group_norm,
            F.instance_norm: instance_norm}


class primitive_norms(TorchFunctionMode):
    """Within this context, `F.batch_norm`, `F.layer_norm`, `F.group_norm` and `F.instance_norm`
    (hence the nn modules) run as plain mean/var/rsqrt ops.

    Use it around a JVP that is then differentiated in reverse mode (`metakit.meta.rules.rof_rule`);
    elsewhere the fused kernels are faster and exact. Running statistics are not updated: run it
    only on throwaway (cloned) buffers.

    Example:
        >>> bn, x = torch.nn.BatchNorm1d(3), torch.randn(5, 3)
        >>> with primitive_norms():
        ...     y = bn(x)
        >>> torch.allclose(y, F.batch_norm(x, None, None, bn.weight, bn.bias, True), atol=1e-6)
        True
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return REPLACED.get(func, func)(*args, **(kwargs or {}))
