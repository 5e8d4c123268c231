"""What the worker's main process does with a batch the pool could not finish."""

from __future__ import annotations

from billiard.einfo import ExceptionInfo
from billiard.exceptions import WorkerLostError

from workers.batches import RequeueingBatches


class Message:
    """The part of a Celery request the batch task acknowledges or rejects."""

    def __init__(self, redelivered: bool = False):
        self.delivery_info = {"redelivered": redelivered}
        self.outcome: str | None = None

    def acknowledge(self) -> None:
        self.outcome = "acknowledged"

    def reject(self, requeue: bool = False) -> None:
        self.outcome = "requeued" if requeue else "rejected"


def failure(error: BaseException) -> ExceptionInfo:
    try:
        raise error
    except BaseException:
        return ExceptionInfo()


def batch_task(reject_on_worker_lost: bool = True) -> RequeueingBatches:
    task = RequeueingBatches()
    task.name, task.reject_on_worker_lost = "test.batch", reject_on_worker_lost
    return task


def test_a_batch_whose_process_died_goes_back_to_the_queue():
    messages = [Message(), Message()]

    batch_task().batch_failed(messages, failure(WorkerLostError("signal 9")))

    assert [message.outcome for message in messages] == ["requeued", "requeued"]


def test_a_message_that_loses_its_process_twice_is_left_to_the_sweeper():
    fresh, again = Message(), Message(redelivered=True)

    batch_task().batch_failed([fresh, again], failure(WorkerLostError("signal 9")))

    assert (fresh.outcome, again.outcome) == ("requeued", "acknowledged")


def test_other_failures_and_a_task_that_opts_out_are_acknowledged_as_celery_does():
    raised, opted_out = Message(), Message()

    batch_task().batch_failed([raised], failure(SystemExit(1)))
    batch_task(reject_on_worker_lost=False).batch_failed(
        [opted_out], failure(WorkerLostError("signal 9"))
    )

    assert (raised.outcome, opted_out.outcome) == ("acknowledged", "acknowledged")


# --- Batches sized by the ids they hold ----------------------------------------------------------


class Buffered:
    """A buffered scoring message: its first argument is the list of comment ids it carries."""

    def __init__(self, ids: int):
        self.args = [list(range(ids))]


def test_a_flush_is_cut_into_batches_of_at_most_the_batch_size_in_ids():
    messages = [Buffered(n) for n in (20, 12, 1, 32, 5, 40, 3)]
    task = batch_task()
    task.batch_items = 32
    ran: list[list[int]] = []
    task._run_batch = lambda batch: ran.append([len(m.args[0]) for m in batch])

    task.flush(messages)

    # In order; a message is never split, so one larger than a batch runs on its own.
    assert ran == [[20, 12], [1], [32], [5], [40], [3]]


def test_without_a_batch_size_a_flush_is_one_batch():
    messages = [Buffered(n) for n in (20, 40)]
    task = batch_task()
    ran: list[int] = []
    task._run_batch = lambda batch: ran.append(len(batch))

    task.flush(messages)

    assert ran == [2]
