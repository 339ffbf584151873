import pytest
import torch

from lsnas.training.module import ClassificationModule, PerClassAccuracy


def test_per_class_accuracy_counts_hits_and_support():
    metric = PerClassAccuracy(4)
    logits = torch.eye(4)[[0, 1, 1, 3, 3, 3]] * 5  # predictions 0,1,1,3,3,3
    target = torch.tensor([0, 1, 2, 3, 3, 0])
    metric.update(logits, target)
    out = metric.compute()
    assert out["support"].tolist() == [2, 1, 1, 2]
    assert out["correct"].tolist() == [1, 1, 0, 2]


def test_a_protocol_lr_for_a_reference_batch_scales_linearly_to_the_global_batch():
    import functools

    import lightning as L

    from tests.helpers.config import compose_config

    protocol = compose_config("train", "arch=resnet18", "protocol=spline_in22k").protocol
    assert (protocol.optimizer.lr, protocol.lr_reference_batch) == (0.1, 6528)  # 204 GPUs x 32: the paper's
    module = ClassificationModule(torch.nn.Linear(4, 3), 3, optimizer=functools.partial(torch.optim.SGD, lr=0.1),
                                  batch_size=protocol.batch_size, lr_reference_batch=protocol.lr_reference_batch)
    module.trainer = L.Trainer(accumulate_grad_batches=2, logger=False, enable_checkpointing=False,
                               accelerator="cpu", devices=1)
    optimizer = module.configure_optimizers()  # no scheduler given: the optimiser itself
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 32 * 2 / 6528)  # 32 images x 2 accumulated
