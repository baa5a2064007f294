"""Dynamic batching: concurrent requests to one signature become one call.

The parameters are TF Serving's (`--enable_batching` with a
`batching_parameters_file`): a batch is closed when it holds
`max_batch_size` examples or `batch_timeout_micros` after its first request
arrived; `num_batch_threads` batches run at once; at most
`max_enqueued_batches` batches wait, beyond which a request is refused with
UNAVAILABLE rather than queued without bound. Rows of a generator's inputs
are independent, so the joined call gives each request the outputs it would
get alone.
"""

import os
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from ganzoo.serving.errors import ServingError


@dataclass(frozen=True)
class BatchingParameters:
    # TF Serving's defaults (TensorFlow's shared batch scheduler).
    max_batch_size: int = 1000
    batch_timeout_micros: int = 0  # no waiting: batches form from what queued while the last one ran
    num_batch_threads: int = 0  # 0: one per CPU core
    max_enqueued_batches: int = 10

    def __post_init__(self):
        for name in ("max_batch_size", "max_enqueued_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if self.batch_timeout_micros < 0 or self.num_batch_threads < 0:
            raise ValueError("batch_timeout_micros and num_batch_threads must not be negative.")

    def batcher(self, call):
        return Batcher(call, self)


_STOP = object()


class _Task:
    __slots__ = ("arrays", "rows", "future")

    def __init__(self, arrays):
        self.arrays = arrays
        self.rows = len(next(iter(arrays.values()))) if arrays else 1
        self.future = Future()


class Batcher:
    """Queues requests for `call` ({name: ndarray} -> {name: ndarray}) and
    runs them in joined batches on `num_batch_threads` threads."""

    def __init__(self, call, parameters):
        self._call = call
        self.parameters = parameters
        self._queue = queue.Queue()
        self._queued_rows = 0
        self._lock = threading.Lock()
        self._closed = False
        self.batches = 0  # joined calls run so far (for tests and the load check)
        count = parameters.num_batch_threads or os.cpu_count() or 1
        self._threads = [threading.Thread(target=self._work, daemon=True, name=f"ganzoo-batch-{i}")
                         for i in range(count)]
        for thread in self._threads:
            thread.start()

    def run(self, arrays):
        """The outputs for this request's rows (blocks until its batch ran)."""
        task = _Task(arrays)
        limit = self.parameters.max_enqueued_batches * self.parameters.max_batch_size
        with self._lock:  # closing and queueing exclude each other: no task lands behind the stop markers
            if self._closed:
                raise ServingError("UNAVAILABLE", "This version is being unloaded; retry.")
            if self._queued_rows + task.rows > limit:
                raise ServingError("UNAVAILABLE", "The batch scheduling queue to which this task was submitted "
                                                  "is full")
            self._queued_rows += task.rows
            self._queue.put(task)
        return task.future.result()

    def close(self):
        """Stop the threads once the queued tasks ran."""
        with self._lock:
            self._closed = True
            for _ in self._threads:
                self._queue.put(_STOP)

    def _take(self, timeout):
        """The next task, `_STOP`, or None when `timeout` passed first."""
        try:
            task = self._queue.get(timeout=timeout) if timeout is None or timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return None
        if task is not _STOP:
            with self._lock:
                self._queued_rows -= task.rows
        return task

    def _work(self):
        timeout = self.parameters.batch_timeout_micros / 1e6
        task = None
        while True:
            first = task if task is not None else self._take(None)
            task = None
            if first is _STOP:
                return
            batch, rows = [first], first.rows
            deadline = time.monotonic() + timeout
            while rows < self.parameters.max_batch_size:
                task = self._take(deadline - time.monotonic())
                if task is None or task is _STOP or rows + task.rows > self.parameters.max_batch_size:
                    break  # a task that does not fit starts the next batch
                batch.append(task)
                rows += task.rows
                task = None
            self._run(batch)
            if task is _STOP:
                return

    def _run(self, batch):
        self.batches += 1
        try:
            if len(batch) == 1:
                results = [self._call(batch[0].arrays)]
            else:
                joined = {name: np.concatenate([t.arrays[name] for t in batch]) for name in batch[0].arrays}
                outputs = self._call(joined)
                bounds = np.cumsum([t.rows for t in batch])[:-1]
                split = {name: np.split(value, bounds) for name, value in outputs.items()}
                results = [{name: parts[i] for name, parts in split.items()} for i in range(len(batch))]
        except ServingError as error:
            if len(batch) == 1:
                batch[0].future.set_exception(error)
            else:
                for task in batch:  # one request's bad input must not fail the others
                    self._run([task])
            return
        except BaseException as error:  # handed to every caller; the thread carries on
            for task in batch:
                task.future.set_exception(error)
            return
        for task, result in zip(batch, results):
            task.future.set_result(result)
