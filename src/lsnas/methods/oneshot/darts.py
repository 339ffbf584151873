"""DARTS (Liu et al., 2019): first order, and the second-order unrolled architecture gradient."""

from __future__ import annotations

import torch
from torch.func import functional_call

from lsnas.errors import ConfigError
from lsnas.methods.oneshot.bilevel import BilevelMethod


class DARTS(BilevelMethod):
    def __init__(self, *args, order: int = 1, hvp_eps: float = 0.01, **kwargs):
        if order not in (1, 2):
            raise ConfigError(f"DARTS order must be 1 or 2 (setting: method.module.order), got {order}")
        super().__init__(*args, **kwargs)
        self.order, self.hvp_eps = order, hvp_eps

    def arch_gradients(self, x_w, y_w, x_a, y_a, w_optimizer):
        if self.order == 1:
            return super().arch_gradients(x_w, y_w, x_a, y_a, w_optimizer)
        return self.unrolled_arch_gradients(x_w, y_w, x_a, y_a, w_optimizer)

    def unrolled_arch_gradients(self, x_w, y_w, x_a, y_a, w_optimizer):
        """grad_alpha L_val(w', alpha) - xi * (finite-difference Hessian-vector product), with the virtual
        step w' = w - xi * (momentum * buf + grad_w L_train(w, alpha) + wd * w) and xi the current weight lr."""
        net = self.supernet
        names = [n for n, _ in net.named_parameters() if not n.startswith(("alpha_", "beta_"))]
        weights = net.weight_parameters()
        alphas = net.arch_parameters()
        group = w_optimizer.param_groups[0]
        xi, momentum, wd = group["lr"], group.get("momentum", 0.0), group.get("weight_decay", 0.0)

        # Virtual step (the official code's _compute_unrolled_model).
        loss = self.criterion(self.search_forward(x_w), y_w)
        grads_w = self._grad(loss, weights)
        with torch.no_grad():
            unrolled = []
            for w, g in zip(weights, grads_w):
                buf = w_optimizer.state.get(w, {}).get("momentum_buffer")
                step = g + wd * w + (momentum * buf if buf is not None else 0.0)
                unrolled.append((w - xi * step).requires_grad_())
        # Validation loss at w', on copies of the BN buffers (the official code used a model copy).
        params = {**dict(zip(names, unrolled)), **{n: p for n, p in net.named_parameters()
                                                    if n.startswith(("alpha_", "beta_"))}}
        buffers = {n: b.clone() for n, b in net.named_buffers()}
        logits = functional_call(net, {**params, **buffers}, (x_a,), tie_weights=False)
        val_loss = self.criterion(logits, y_a)
        self._log_epoch("search/arch_loss", val_loss.detach())
        grads = self._grad(val_loss, [*alphas, *unrolled])
        d_alpha, d_unrolled = grads[:len(alphas)], grads[len(alphas):]
        implicit = self._hessian_vector_product(d_unrolled, x_w, y_w)
        return [da - xi * h for da, h in zip(d_alpha, implicit)]

    def _hessian_vector_product(self, vector, x, y) -> list[torch.Tensor]:
        """(grad_alpha L_train(w + R v) - grad_alpha L_train(w - R v)) / 2R, R = eps / ||v||."""
        weights, alphas = self.supernet.weight_parameters(), self.supernet.arch_parameters()
        r = self.hvp_eps / torch.cat([v.flatten() for v in vector]).norm()

        def shift(scale):
            with torch.no_grad():
                for w, v in zip(weights, vector):
                    w.add_(v, alpha=float(scale))

        shift(r)
        g_plus = self._grad(self.criterion(self.search_forward(x), y), alphas)
        shift(-2 * r)
        g_minus = self._grad(self.criterion(self.search_forward(x), y), alphas)
        shift(r)
        return [(gp - gm) / (2 * r) for gp, gm in zip(g_plus, g_minus)]
