"""The zero-cost proxies users compare NTK metrics against, and the size baselines every proxy must beat.

- ``naswot`` (Mellor et al., ICML 2021): log |det K|, K_ij = number of ReLUs on which samples i and j agree
  (both active or both inactive), summed over every ReLU of the network. Networks with other gating activations
  (ReLU6, SiLU / swish, GELU, Hardswish, LeakyReLU: MobileNet and BigNAS spaces) are coded the same way, by the
  sign of the activation's input.
- ``grad_norm`` / ``snip`` (Abdelfattah et al., ICLR 2021): from one cross-entropy backward pass, the sum over
  conv and linear weights of ||dL/dw|| / of |w * dL/dw|.
- ``synflow``: log of the synaptic flow of an all-ones input through the absolute weights.
- ``params`` / ``macs``: the candidate's size (larger ranks higher, as a baseline).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from lsnas.proxies.base import register_proxy
from lsnas.training.complexity import count_macs, count_parameters

_LAYERS = (nn.Conv2d, nn.Linear)
_GATES = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.Hardswish, nn.LeakyReLU)  # on / off: the sign of the input


def activation_kernel(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """NASWOT's K: for each pair of samples, the ReLUs whose on/off states agree, over the whole network."""
    n = x.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64)

    def hook(module, inputs, output):
        codes = (inputs[0].detach().reshape(n, -1) > 0).double()
        kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, _GATES)]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for handle in handles:
            handle.remove()
    return kernel


@register_proxy("naswot", higher_is_better=True)
def naswot(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(torch.linalg.slogdet(activation_kernel(net, x))[1])


def _loss_gradients(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    weights = [m.weight for m in net.modules() if isinstance(m, _LAYERS)]
    grads = torch.autograd.grad(F.cross_entropy(net(x), y), weights, allow_unused=True)
    return [(w, g) for w, g in zip(weights, grads) if g is not None]


@register_proxy("grad_norm", higher_is_better=True)
def grad_norm(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(sum(g.norm() for _, g in _loss_gradients(net, x, y)))


@register_proxy("snip", higher_is_better=True)
def snip(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(sum((w.detach() * g).abs().sum() for w, g in _loss_gradients(net, x, y)))


@register_proxy("params", higher_is_better=True)
def params(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(count_parameters(net))


@register_proxy("macs", higher_is_better=True)
def macs(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(count_macs(net, tuple(x.shape[1:])))


@register_proxy("synflow", higher_is_better=True)
def synflow(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """SynFlow (Tanaka et al., 2020; as a proxy, Abdelfattah et al.): with every parameter replaced by its
    absolute value and an all-ones input, the sum over conv and linear weights of w * dR/dw, R the sum of the
    outputs. Reported as its natural log: the raw value grows with depth past float32 (and, for deep DARTS
    networks, far past anything readable). Computed in float64 on a copy with BN in eval mode (a one-image
    batch has no batch statistics); the network itself is untouched."""
    probe = copy.deepcopy(net).double().eval()
    with torch.no_grad():
        for p in probe.parameters():
            p.abs_()
    weights = [m.weight for m in probe.modules() if isinstance(m, _LAYERS)]
    out = probe(torch.ones(1, *x.shape[1:], dtype=torch.float64, device=x.device))
    grads = torch.autograd.grad(out.sum(), weights, allow_unused=True)
    total = sum((w.detach() * g).sum() for w, g in zip(weights, grads) if g is not None)
    return float(torch.log(total))
