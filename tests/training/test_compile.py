"""``compile`` (torch.compile of the network's forward in train.py's steps) on CPU. The backend is ``aot_eager``:
dynamo and AOTAutograd trace exactly as with inductor, without a C++ compiler at test time."""

import lightning as L
import pytest
import torch
from torch._dynamo.utils import counters

from lsnas.arch import resolve_arch
from lsnas.spaces.darts.ops import drop_path
from lsnas.training.runner import build_network, compile_options, make_module
from tests.helpers.config import compose_config

COMPILE = {"backend": "aot_eager"}


def tiny_darts(epochs: int = 3, drop_path_prob: float = 0.3):
    cfg = compose_config("train", "arch=darts_v2", "protocol=darts_cifar", "protocol.model.init_channels=8",
                         "protocol.model.layers=5", f"protocol.epochs={epochs}",
                         f"protocol.drop_path_prob={drop_path_prob}")
    arch = resolve_arch(cfg.arch)
    data = type("Data", (), {"num_classes": 10, "input_shape": (3, 32, 32)})
    return cfg, arch, build_network(arch, data, cfg.protocol)


def loader(n: int = 20, batch: int = 8) -> torch.utils.data.DataLoader:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
    data = torch.utils.data.TensorDataset(x, y)
    return torch.utils.data.DataLoader(data, batch_size=batch)


def test_compile_setting_gives_torch_compile_options():
    cfg = compose_config("train")
    assert cfg.compile.enabled is False and compile_options(cfg.compile) is None
    assert compile_options(None) is None
    assert compile_options({"enabled": True, "backend": "aot_eager", "mode": None}) == {"backend": "aot_eager",
                                                                                         "mode": None}


def test_compiled_forward_equals_eager_and_leaves_the_state_dict_alone():
    torch.manual_seed(0)
    cfg, arch, net = tiny_darts()
    module = make_module(net, 10, cfg.protocol, arch, compile=COMPILE)
    eager_keys = list(make_module(tiny_darts()[2], 10, cfg.protocol, arch).state_dict())
    module.setup("fit")
    assert module._compiled_outputs is not None
    module.eval()
    x = torch.randn(4, 3, 32, 32)
    logits, aux = module._outputs(x)
    assert aux is None
    torch.testing.assert_close(logits, net(x), rtol=1e-5, atol=1e-6)
    assert list(module.state_dict()) == eager_keys  # checkpoints are interchangeable with eager runs'


def test_drop_path_with_a_tensor_probability():
    x = torch.randn(4000, 3, 2, 2)
    assert torch.equal(drop_path(x, torch.tensor(0.0)), x)  # 0 keeps every path exactly
    torch.manual_seed(0)
    y = drop_path(x, torch.tensor(0.25))
    kept = (y != 0).flatten(1).all(1)
    dropped = (y == 0).flatten(1).all(1)
    assert bool((kept | dropped).all())  # whole samples, never parts of one
    torch.testing.assert_close(y[kept], x[kept] / 0.75)
    assert abs(kept.float().mean().item() - 0.75) < 4 * (0.75 * 0.25 / 4000) ** 0.5  # 4 standard deviations
    half = drop_path(x.bfloat16(), torch.tensor(0.1))
    assert half.dtype == torch.bfloat16  # the mask follows x's dtype ...
    kept = (half != 0).flatten(1).all(1)
    torch.testing.assert_close(half[kept], (x.bfloat16() * torch.tensor(1 / 0.9).bfloat16())[kept])  # ... as timm's


@pytest.mark.slow
def test_compiled_training_does_not_recompile_as_drop_path_ramps():
    """The DARTS protocol raises drop_path_prob every epoch. As a Python float it was a constant of the compiled
    graph: each epoch recompiled, and after 8 dynamo gave up and ran eager. Under compilation the network hands the
    cells a tensor once the probability is above 0, so the graphs are the first epoch's (p = 0: no drop-path drawn)
    and the second's (drop-path on), and no later epoch compiles again."""
    torch.manual_seed(0)
    cfg, arch, net = tiny_darts(epochs=4)
    module = make_module(net, 10, cfg.protocol, arch, compile=COMPILE)
    graphs = []

    class CountGraphs(L.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            graphs.append((counters["stats"]["unique_graphs"], pl_module.net.drop_path_prob))

    counters.clear()
    trainer = L.Trainer(max_epochs=4, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[CountGraphs()])
    trainer.fit(module, loader(), loader())
    counts, probabilities = zip(*graphs)
    assert probabilities == pytest.approx([0.0, 0.075, 0.15, 0.225])  # the ramp ran ...
    assert 0 < counts[0] < counts[1] == counts[2] == counts[3]  # ... compiling for drop-path once, then never again
    assert torch.isfinite(trainer.callback_metrics["train/loss_epoch"])
