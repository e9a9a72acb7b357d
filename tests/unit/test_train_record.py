from __future__ import annotations

from apar_sgl.train.record import StepLog, epoch_means


def _step(step: int, epoch: int, loss: float) -> StepLog:
    return StepLog(step, epoch, loss, 1e-3, 4, 100, 1.0)


def test_epoch_means_average_each_epochs_steps_in_order():
    log = [_step(1, 0, 2.0), _step(2, 0, 1.0), _step(3, 1, 0.5), _step(4, 2, 0.25)]
    assert epoch_means(log) == [1.5, 0.5, 0.25]
    assert epoch_means([]) == []
