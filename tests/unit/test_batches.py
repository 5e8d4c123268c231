"""What the worker's main process does with a batch the pool could not finish."""

from __future__ import annotations

import pytest
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


# --- A batch leaves when a pool process is free --------------------------------------------------


class PoolRequest(Buffered):
    """A buffered scoring message as the pool is handed it (what SimpleRequest copies)."""

    def __init__(self, ids: int, acks_late: bool = True, ack_fails: bool = False):
        super().__init__(ids)
        self.id, self.name, self.hostname = "task-id", "test.batch", "worker@host"
        self._payload = (self.args, {}, {})
        self.delivery_info, self.request_dict = {}, {}
        self.reply_to = self.correlation_id = None
        self.task = type("Task", (), {"acks_late": acks_late})()
        self.ack_fails = ack_fails

    def acknowledge(self) -> None:
        if self.ack_fails:
            raise ConnectionError("broker gone")


class Pool:
    """Two processes; keeps each job's callbacks for the test to fire."""

    num_processes = 2

    def __init__(self):
        self.jobs: list[dict] = []

    def apply_async(self, _fn, _args, accept_callback, callback, error_callback):
        self.jobs.append({"done": callback, "failed": error_callback})


def pooled_task() -> tuple[RequeueingBatches, Pool, list[int]]:
    task, pool = batch_task(), Pool()
    task._pool, task.batch_items = pool, 32
    flushes: list[int] = []
    task._do_flush = lambda: flushes.append(task._buffer.qsize())
    return task, pool, flushes


def test_a_finished_batch_lets_the_buffer_go_only_once_a_process_is_free():
    task, pool, flushes = pooled_task()
    task.flush([PoolRequest(32), PoolRequest(32), PoolRequest(32)])  # three batches, two processes
    assert len(pool.jobs) == 3 and task._in_flight == 3
    task._buffer.put(PoolRequest(1))

    pool.jobs[0]["done"](None)  # two batches still hold both processes
    assert flushes == [] and task._in_flight == 2
    pool.jobs[1]["done"](None)  # a process is free: it takes what arrived
    assert flushes == [1] and task._in_flight == 1


def test_a_batch_counts_as_finished_even_when_its_acknowledgement_fails():
    task, pool, _flushes = pooled_task()
    task.flush([PoolRequest(3, ack_fails=True)])
    with pytest.raises(ConnectionError):
        pool.jobs[0]["done"](None)
    task.flush([PoolRequest(3)])
    pool.jobs[1]["failed"](failure(SystemExit(1)))

    assert task._in_flight == 0
