"""The empirical neural tangent kernel of a minibatch, and the metrics NAS reads from it.

Following Mok et al. (CVPR 2022, naver-ai/demystifying-ntk): row i of G is the gradient of the sum of
sample i's logits (from one forward pass of the whole batch, so BN in train mode couples the samples as it
does in training) with respect to the weight tensors: parameters named ``weight``, BN's gamma included,
biases and the final classifier excluded. Theta = G G^T (N x N).

With BN in eval mode the rows come from torch.func (a vmap over per-sample gradients, ``chunk_size`` rows at a
time); with BN in train mode from backward passes of one batched forward, ``rows_per_pass`` rows per pass
(see ``ntk_jacobian``).
"""

from __future__ import annotations

import contextlib
import threading
import warnings

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from lsnas.proxies.base import register_proxy


def classifier_name(net: nn.Module) -> str | None:
    """The final classifier: the last ``nn.Linear`` in module order (DARTS networks: ``classifier``)."""
    names = [name for name, module in net.named_modules() if isinstance(module, nn.Linear)]
    return names[-1] if names else None


def ntk_parameters(net: nn.Module) -> dict[str, torch.Tensor]:
    """The weight tensors the kernel is taken over (see the module docstring)."""
    head = classifier_name(net)
    return {name: p for name, p in net.named_parameters()
            if p.requires_grad and name.rsplit(".", 1)[-1] == "weight"
            and not (head is not None and name.startswith(head + "."))}


@contextlib.contextmanager
def batch_statistics_only(net: nn.Module):
    """BN layers in train mode normalise with the batch's statistics without updating their running ones
    (a function transform may not write buffers, and measuring must not change the network)."""
    saved = []
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.training and module.track_running_stats:
            saved.append((module, module.running_mean, module.running_var, module.num_batches_tracked))
            module.running_mean = module.running_var = module.num_batches_tracked = None
            module.track_running_stats = False
    try:
        yield
    finally:
        for module, mean, var, count in saved:
            module.running_mean, module.running_var, module.num_batches_tracked = mean, var, count
            module.track_running_stats = True


def couples_samples(net: nn.Module) -> bool:
    """Whether one sample's output depends on the others' (BN normalising with batch statistics)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and (m.training or not m.track_running_stats)
               for m in net.modules())


def ntk_jacobian(net: nn.Module, x: torch.Tensor, chunk_size: int | None = None,
                 rows_per_pass: int = 1) -> torch.Tensor:
    """G: N x P, row i = d(sum_c f(x)_ic) / d(weights).

    Samples that do not interact (BN in eval mode) get per-sample gradients under vmap, ``chunk_size`` at a
    time: the cost of about one batched forward and backward (32x faster than N backward passes for a batch
    of 64 on a DARTS network). With BN in train mode each row needs a backward pass of the whole batched
    forward (below the last BN a row's gradient is dense over the batch), as in the official code;
    ``rows_per_pass`` > 1 computes that many rows in one batched backward (autograd's ``is_grads_batched``),
    the same numbers at ~``rows_per_pass`` x the activation-gradient memory. It cannot save arithmetic, only
    per-pass overhead: on a 2-core CPU a backward's cost per sample does not fall with the batch, and 8 rows
    per pass were slower than the loop (docs/benchmarks.md); a GPU's may fall (benchmarks/gpu_check.py)."""
    if couples_samples(net):
        return _rows_by_backward(net, x, rows_per_pass)
    params = {k: v.detach() for k, v in ntk_parameters(net).items()}

    def logit_sum(weights: dict[str, torch.Tensor], sample: torch.Tensor) -> torch.Tensor:
        return functional_call(net, weights, (sample.unsqueeze(0),), strict=False).sum()

    rows = vmap(grad(logit_sum), in_dims=(None, 0), chunk_size=chunk_size)(params, x)
    return torch.cat([rows[name].reshape(x.shape[0], -1) for name in params], dim=1).detach()


def _rows_by_backward(net: nn.Module, x: torch.Tensor, rows_per_pass: int = 1) -> torch.Tensor:
    if rows_per_pass < 1:
        raise ValueError(f"rows_per_pass must be >= 1 (setting: proxy.ntk_rows_per_pass), got {rows_per_pass}")
    params = list(ntk_parameters(net).values())
    n = x.shape[0]
    rows = []
    with batch_statistics_only(net):
        logits = net(x).sum(dim=1)
        for start in range(0, n, rows_per_pass):
            stop = min(start + rows_per_pass, n)
            last = stop == n
            if rows_per_pass == 1:  # the official loop
                grads = torch.autograd.grad(logits[start], params, retain_graph=not last, allow_unused=True)
                grads = [g.unsqueeze(0) if g is not None else None for g in grads]
            else:  # rows start..stop-1 at once: one-hot cotangents, a batched backward
                one_hot = torch.eye(n, dtype=logits.dtype, device=logits.device)[start:stop]
                grads = torch.autograd.grad(logits, params, one_hot, retain_graph=not last, allow_unused=True,
                                            is_grads_batched=True)
            rows.append(torch.cat([(g if g is not None else p.new_zeros(stop - start, *p.shape)).flatten(1)
                                   for g, p in zip(grads, params)], dim=1))
    return torch.cat(rows)


def empirical_ntk(net: nn.Module, x: torch.Tensor, chunk_size: int | None = None,
                  rows_per_pass: int = 1) -> torch.Tensor:
    """Theta = G G^T in float64 (eigenvalues of ill-conditioned kernels need the precision)."""
    g = ntk_jacobian(net, x, chunk_size, rows_per_pass).double()
    return g @ g.T


def ntk_loop(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The kernel the way the official code computes it whatever the BN mode, one backward pass per sample
    (for tests and benchmarks)."""
    g = _rows_by_backward(net, x).double()
    return g @ g.T


_SHARED = threading.local()  # per thread: the threads executor measures several candidates at once


@contextlib.contextmanager
def shared_kernels(rows_per_pass: int = 1):
    """Within this block the NTK of a (network, batch) pair is computed once for every NTK proxy measured on
    it (ntk_cond, ntk_fro, ntk_mean, ntk_trace, lga); the network must not change meanwhile. ``rows_per_pass``:
    see ``ntk_jacobian``."""
    outer = getattr(_SHARED, "kernels", None), getattr(_SHARED, "rows_per_pass", 1)
    _SHARED.kernels, _SHARED.rows_per_pass = {}, rows_per_pass
    try:
        yield
    finally:
        _SHARED.kernels, _SHARED.rows_per_pass = outer


def kernel(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``empirical_ntk(net, x)``, shared between proxies inside ``shared_kernels()``."""
    kernels = getattr(_SHARED, "kernels", None)
    if kernels is None:
        return empirical_ntk(net, x)
    key = (id(net), id(x), net.training)
    if key not in kernels:
        kernels[key] = empirical_ntk(net, x, rows_per_pass=_SHARED.rows_per_pass)
    return kernels[key]


# -- metrics of a kernel (pure functions of Theta, tested on known matrices) ---------------------------
def condition_number(theta: torch.Tensor, rtol: float = 1e-10) -> float:
    """Largest / smallest non-zero eigenvalue (TE-NAS); eigenvalues below ``rtol`` x the largest count as 0.

    The official code keeps the eigenvalues of ``torch.eig`` (since removed from PyTorch) that are exactly
    non-zero, so round-off (tiny or negative eigenvalues of a singular kernel) decides its result; the kernel
    is symmetric, so ``eigvalsh`` with a relative threshold gives the intended value."""
    eig = torch.linalg.eigvalsh(theta.double())
    top = eig.max()
    if top <= 0:
        warnings.warn("the NTK is zero; its condition number is taken as inf", stacklevel=2)
        return float("inf")
    nonzero = eig[eig > rtol * top]
    return float(top / nonzero.min())


def label_gradient_alignment(theta: torch.Tensor, y: torch.Tensor) -> float:
    """LGA: the centred kernel alignment of Theta with L (L_ij = +1 where labels i and j agree, else -1)."""
    labels = y.reshape(-1, 1)
    target = (labels == labels.T).double() * 2 - 1
    a = theta.double() - theta.double().mean()
    b = target - target.mean()
    norm = torch.linalg.matrix_norm(a) * torch.linalg.matrix_norm(b)
    if norm == 0:
        warnings.warn("LGA is undefined for a constant kernel or a batch of one class; taken as 0", stacklevel=2)
        return 0.0
    return float((a * b).sum() / norm)


@register_proxy("ntk_cond", higher_is_better=False)
def ntk_cond(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return condition_number(kernel(net, x))


@register_proxy("ntk_fro", higher_is_better=True)
def ntk_fro(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(kernel(net, x)))


@register_proxy("ntk_mean", higher_is_better=True)
def ntk_mean(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """KNAS: the mean entry of the kernel."""
    return float(kernel(net, x).mean())


@register_proxy("ntk_trace", higher_is_better=True)
def ntk_trace(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(torch.trace(kernel(net, x)))


@register_proxy("lga", higher_is_better=True)
def lga(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return label_gradient_alignment(kernel(net, x), y)
