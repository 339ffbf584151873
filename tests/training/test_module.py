import torch

from lsnas.training.module import PerClassAccuracy


def test_per_class_accuracy_counts_hits_and_support():
    metric = PerClassAccuracy(4)
    logits = torch.eye(4)[[0, 1, 1, 3, 3, 3]] * 5  # predictions 0,1,1,3,3,3
    target = torch.tensor([0, 1, 2, 3, 3, 0])
    metric.update(logits, target)
    out = metric.compute()
    assert out["support"].tolist() == [2, 1, 1, 2]
    assert out["correct"].tolist() == [1, 1, 0, 2]
