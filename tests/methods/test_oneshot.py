import pytest
import torch

from lsnas.methods.oneshot import PCDARTS, OneShotMethod
from lsnas.methods.oneshot.gdas import hard_gumbel_softmax, temperature
from lsnas.methods.oneshot.runner import check_method_space
from lsnas.spaces.darts.genotype import edge_index
from lsnas.spaces.darts.ops import PRIMITIVES

SPACE = {"name": "darts", "network": "cifar", "init_channels": 8, "layers": 3}
OPT = {"w_optimizer": lambda p: torch.optim.SGD(p, lr=0.1), "a_optimizer": lambda p: torch.optim.Adam(p)}


def test_pcdarts_genotype_weights_edges_by_softmax_beta():
    method = PCDARTS(num_classes=3, input_shape=(3, 16, 16), space=SPACE, partial_channels=2, **OPT)
    net = method.supernet
    with torch.no_grad():
        for p in net.arch_parameters():
            p.zero_()
        sep = PRIMITIVES.index("sep_conv_3x3")
        # node 1 (inputs 0, 1, 2): input 0 has the strongest op weight...
        net.alpha_normal[edge_index(1, 0), sep] = 3.0
        net.alpha_normal[edge_index(1, 1), sep] = 2.0
        net.alpha_normal[edge_index(1, 2), sep] = 1.0
    assert sorted(i for _, i in method.genotype()["normal"][2:4]) == [0, 1]
    with torch.no_grad():  # ...but beta says the node should read inputs 1 and 2
        net.beta_normal[edge_index(1, 0)] = -10.0
    assert sorted(i for _, i in method.genotype()["normal"][2:4]) == [1, 2]


def test_hard_gumbel_softmax_is_one_hot_with_soft_gradients():
    torch.manual_seed(0)
    logits = torch.randn(14, 8, requires_grad=True)
    hard, index = hard_gumbel_softmax(logits, tau=1.0)
    assert torch.equal(hard.detach(), torch.nn.functional.one_hot(index, 8).float())
    (hard * torch.randn(14, 8)).sum().backward()
    assert logits.grad.abs().sum() > 0


def test_gdas_temperature_is_annealed_linearly_from_tau_max_to_tau_min():
    taus = [temperature(e, 11, 10.0, 0.1) for e in range(11)]
    assert taus[0] == 10.0 and taus[-1] == pytest.approx(0.1)
    assert all(a - b == pytest.approx(0.99) for a, b in zip(taus, taus[1:]))


def test_wrong_method_space_pair_lists_valid_choices():
    class OnlyResNet(OneShotMethod):
        spaces = ("resnet",)

    with pytest.raises(ValueError, match="supports: resnet.*Known spaces: .*darts"):
        check_method_space(OnlyResNet, "darts")
    check_method_space(PCDARTS, "darts")


def test_ddp_leaves_the_alphas_to_the_architecture_step_and_the_weight_step_computes_no_alpha_gradient(tmp_path):
    """The weight step's backward fills only the weights' gradients, so DDP must not wait for the alphas'
    (it would fail at the next forward: 'Expected to have finished reduction in the prior iteration')."""
    from torch.nn.parallel import DistributedDataParallel

    method = PCDARTS(num_classes=3, input_shape=(3, 16, 16), space=SPACE, partial_channels=2, **OPT)
    arch = {id(p) for p in method.supernet.arch_parameters()}
    assert sorted(method._ddp_params_and_buffers_to_ignore) == sorted(
        n for n, p in method.named_parameters() if id(p) in arch) and len(arch) == 4
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        method.forward = method.supernet.forward  # Lightning redirects DDP's forward to training_step likewise
        ddp = DistributedDataParallel(method)
        weights = method.supernet.weight_parameters()
        for _ in range(2):  # the second forward is where DDP fails if a reduction was left unfinished
            x = torch.randn(2, 3, 16, 16).contiguous(memory_format=torch.channels_last)
            method.criterion(ddp(x), torch.tensor([0, 1])).backward(inputs=weights)
        assert all(p.grad is None for p in method.supernet.arch_parameters())
        assert all(w.grad is not None for w in weights)
    finally:
        torch.distributed.destroy_process_group()
