"""The empirical NTK and its metrics: known matrices, closed forms, and vmap against the per-sample loop."""

import math
import random

import pytest
import torch

from lsnas.proxies import PROXIES, get_proxy
from lsnas.proxies.ntk import (
    classifier_name,
    condition_number,
    empirical_ntk,
    kernel,
    label_gradient_alignment,
    ntk_jacobian,
    ntk_loop,
    ntk_parameters,
    shared_kernels,
)
from lsnas.spaces import get_space

SPACE = get_space("darts")


def small_net(seed=0, layers=3, channels=4):
    torch.manual_seed(seed)
    return SPACE.build(SPACE.sample(random.Random(seed)), 10, (3, 16, 16), network="cifar",
                       init_channels=channels, layers=layers)


def batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 16, 16, generator=g), torch.arange(n) % 3


def test_lga_equals_its_closed_form_is_one_for_the_centred_label_kernel_and_ignores_scale():
    y = torch.tensor([0, 0, 1, 2, 1])
    target = (y[:, None] == y[None, :]).double() * 2 - 1
    theta = torch.randn(5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    theta = theta @ theta.T
    a, b = theta - theta.mean(), target - target.mean()
    closed = float((a * b).sum() / (a.norm() * b.norm()))
    assert label_gradient_alignment(theta, y) == pytest.approx(closed, abs=1e-12)
    assert label_gradient_alignment(3.0 * b + 7.0, y) == pytest.approx(1.0, abs=1e-12)
    assert label_gradient_alignment(1e6 * theta, y) == pytest.approx(closed, abs=1e-12)
    with pytest.warns(UserWarning, match="undefined"):
        assert label_gradient_alignment(torch.ones(5, 5), y) == 0.0


def test_condition_number_and_trace_on_known_matrices():
    q, _ = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    theta = q @ torch.diag(torch.tensor([8.0, 4.0, 2.0, 0.0], dtype=torch.float64)) @ q.T
    assert condition_number(theta) == pytest.approx(4.0)  # the zero eigenvalue is left out
    assert float(torch.trace(theta)) == pytest.approx(14.0)
    with pytest.warns(UserWarning, match="zero"):
        assert math.isinf(condition_number(torch.zeros(3, 3)))


def test_the_kernel_is_taken_over_weights_and_bn_gammas_not_biases_or_the_classifier():
    net = small_net()
    names = set(ntk_parameters(net))
    assert classifier_name(net) == "classifier"
    assert names and all(n.endswith(".weight") for n in names) and not any(n.startswith("classifier.") for n in names)
    bn_gammas = {f"{m}.weight" for m, mod in net.named_modules()
                 if isinstance(mod, torch.nn.BatchNorm2d) and mod.affine}
    assert bn_gammas and bn_gammas <= names


def test_the_vmap_kernel_equals_the_per_sample_loop():
    net = small_net().eval()  # independent samples: the per-sample vmap path
    x, _ = batch()
    fast, slow = empirical_ntk(net, x, chunk_size=3), ntk_loop(net, x)
    assert fast.shape == (8, 8)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(fast, fast.T)


def test_in_train_mode_bn_couples_the_samples_and_measuring_leaves_its_statistics_alone():
    net = small_net().train()
    x, _ = batch()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    coupled = empirical_ntk(net, x)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    # sample 0's row depends on the rest of the batch through the batch statistics
    alone = empirical_ntk(net, torch.cat([x[:1], torch.randn(7, 3, 16, 16)]))
    assert not torch.allclose(coupled[0, 0], alone[0, 0])
    assert not torch.allclose(coupled, empirical_ntk(net.eval(), x))


@pytest.mark.parametrize("rows_per_pass", [3, 8, 20])  # a short last pass; all rows in one; more than the batch
def test_train_mode_rows_computed_several_per_backward_pass_equal_the_loop(rows_per_pass):
    net = small_net().train()
    x, _ = batch()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rows = ntk_jacobian(net, x, rows_per_pass=rows_per_pass)
    loop = ntk_jacobian(net, x)
    assert rows.shape == loop.shape == (8, sum(p.numel() for p in ntk_parameters(net).values()))
    torch.testing.assert_close(rows, loop, rtol=1e-6, atol=1e-9)
    with shared_kernels(rows_per_pass=rows_per_pass):  # the path the proxies take (proxy.ntk_rows_per_pass)
        torch.testing.assert_close(kernel(net, x), ntk_loop(net, x), rtol=1e-6, atol=1e-9)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    with pytest.raises(ValueError, match="proxy.ntk_rows_per_pass"):
        ntk_jacobian(net, x, rows_per_pass=0)


def test_every_ntk_proxy_runs_and_knows_its_direction():
    net = small_net()
    x, y = batch()
    values = {name: PROXIES.get(name)(net, x, y) for name in ("ntk_cond", "ntk_fro", "ntk_mean", "ntk_trace", "lga")}
    assert all(math.isfinite(v) for v in values.values()), values
    assert values["ntk_cond"] >= 1 and values["ntk_trace"] > 0 and -1 <= values["lga"] <= 1
    assert get_proxy("ntk_cond").sign == -1 and get_proxy("lga").sign == 1


def test_naswot_equals_a_direct_computation_of_its_kernel():
    from lsnas.proxies.zero_cost import activation_kernel

    net = small_net().eval()
    x, y = batch()
    codes = []
    handles = [m.register_forward_hook(lambda m, i, o: codes.append((i[0].reshape(8, -1) > 0).double()))
               for m in net.modules() if isinstance(m, torch.nn.ReLU)]
    with torch.no_grad():
        net(x)
    for h in handles:
        h.remove()
    c = torch.cat(codes, dim=1)  # every ReLU's on/off states side by side
    direct = c @ c.T + (1 - c) @ (1 - c).T
    torch.testing.assert_close(activation_kernel(net, x), direct)
    assert get_proxy("naswot")(net, x, y) == pytest.approx(float(torch.linalg.slogdet(direct)[1]))


def test_every_registered_proxy_runs_on_a_darts_network():
    net = small_net()
    x, y = batch()
    for name in PROXIES.names():
        value = PROXIES.get(name)(net, x, y)
        assert math.isfinite(value), name
    assert get_proxy("params")(net, x, y) == sum(p.numel() for p in net.parameters())


def test_synflow_stays_finite_on_a_20_cell_darts_network_and_leaves_it_untouched():
    torch.manual_seed(0)
    net = SPACE.build(SPACE.sample(random.Random(0)), 10, (3, 32, 32), network="cifar", init_channels=16, layers=20)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    value = get_proxy("synflow")(net, torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))
    assert math.isfinite(value) and value > 0
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_a_random_search_ranks_candidates_by_a_proxy(tmp_path):
    from lsnas.methods import search
    from lsnas.methods.multitrial.journal import Journal, TrialLog
    from tests.helpers.config import compose_config

    cfg = compose_config("search", "method=random", "evaluator=proxy", "proxy=ntk_cond",
                         "proxy.also=[lga,naswot,params]", "proxy.batch_size=16", "method.num_trials=3",
                         "dataset.resolution=8", "protocol.model.layers=3", "protocol.model.init_channels=4",
                         "logger=none")
    summary = search(cfg, tmp_path)
    log = TrialLog.replay(Journal(tmp_path).read())
    assert summary["trials"] == 3 and all(r["status"] == "complete" for r in log.results.values())
    for r in log.results.values():
        assert r["score"] == -r["metrics"]["proxy/ntk_cond"]
        assert {"proxy/lga", "proxy/naswot", "proxy/params"} <= set(r["metrics"])
    assert summary["best_score"] == max(r["score"] for r in log.results.values())
