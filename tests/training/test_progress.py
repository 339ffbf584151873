from lsnas.training.progress import short_metrics


def test_short_metrics_keep_the_three_that_matter_first():
    items = {"v_num": 3, "val/top5": 0.2, "train/loss_step": 2.1, "train/loss_epoch": 2.3, "val/top1": 0.1,
             "train/top1": 0.15}
    assert short_metrics(items) == {"loss": 2.1, "top1": 0.15, "val": 0.1}
    assert short_metrics({"train/loss_epoch": 2.3, "custom": 1.0}) == {"loss": 2.3, "custom": 1.0}
