"""Bulk triage on every core: ``eval`` and ``replay`` examine messages in a pool of processes.

:func:`triage.pipeline.examine` (parse and rules: nearly all the cost, and a function of the
message alone) runs in the workers. With a sender history, the caller concludes each message
(:func:`triage.pipeline.conclude`: the sender's history, the decision, the draft) in its own
process, in input order, so the per-sender daily limit counts the same drafts as in one
process and the results are the same. Without one, concluding depends on the message alone
too: :class:`Examination`'s ``finish`` then concludes in the worker and keeps only what the
caller needs (an action, a line of output), so that the pipes, the pickling and the caller's
share of the two cores shrink (on the 100,000-message replay, the examinations were 12 KB
each, pickled in the worker and unpickled by the caller).

- Workers receive :class:`~triage.sources.Location` s (a path, or a span of an mbox) in chunks
  and read the bytes themselves: what crosses the pipes is a few names one way and the
  examinations (a decoded view and the findings, a few KB each) the other.
- At most :data:`AHEAD` chunks per worker are in flight and the input is read lazily, so memory
  does not grow with the archive.
- A worker that dies (a crash in the parser, the kernel's OOM killer) loses nothing: the
  messages of the chunks it took are examined again one at a time in a separate one-worker
  pool, and a message that kills that worker too is concluded to quarantine, in its place.
- ``jobs=1`` runs everything in the calling process, as before the pool existed.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any, Generic, TypeVar

from triage.config import Settings
from triage.errors import SourceError
from triage.pipeline import Examined, examine, prepare
from triage.sources import Location

#: Messages per task: about a tenth of a second of work, so that handing out tasks and
#: collecting their results (futures, wake-ups, pickling) stays a small share of the caller's
#: time, which it shares with the workers: 16 a task cost the 10,000-message replay 4 % more
#: time than 64.
CHUNK = 64
#: Chunks in flight per worker: enough that no worker waits while the caller concludes the
#: oldest chunk, few enough to bound memory.
AHEAD = 4

T = TypeVar("T")
#: What the caller keeps of one message's examination (in the worker that examined it).
Finish = Callable[[Location, Examined], T]
Result = Any  # a T, or the SourceError of a location that could not be read


def examined(_location: Location, examination: Examined) -> Examined:
    """The default ``finish``: the whole examination, for the caller to conclude."""
    return examination


@dataclass(frozen=True)
class _Job(Generic[T]):
    """What every message of one run is examined with (set once per worker)."""

    settings: Settings
    mailbox: str | None
    dated: bool
    finish: Finish[T]


_job: _Job[Any] | None = None


def _start_worker(job: _Job[Any], caller: int) -> None:
    global _job
    _job = job
    # Ctrl-C is the caller's to handle: it stops the pool after the chunks under way.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(caller,), daemon=True).start()
    # What the worker keeps all run long (modules, configuration, geography), out of the
    # collector's sight: each full collection walked all of it again (on the first 10,000
    # messages of the replay archive, 0.25 s of full collections a worker; 0.07 s frozen).
    prepare(job.settings)
    gc.freeze()


def _exit_with(caller: int) -> None:
    """End this worker when the caller is gone (killed, SIGTERM): the pool's queues do not
    tell an idle worker, which would otherwise wait for work forever."""
    while os.getppid() == caller:
        time.sleep(1.0)
    os._exit(1)


def _examine_one(location: Location, job: _Job[Any]) -> Result:
    try:
        raw = location.read()
    except SourceError as exc:  # raised by the caller, where one process would have
        return exc
    return job.finish(location, examine(raw, job.settings, job.mailbox, dated=job.dated))


def _examine_chunk(locations: list[Location]) -> list[Result]:
    """The worker's task (module level, so that the pool can name it)."""
    assert _job is not None, "worker not started"
    return [_examine_one(location, _job) for location in locations]


def _failed(cause: Exception) -> Examined:
    """The examination of a message whose worker died on it even alone (or could not send
    its examination back): concluded to quarantine, with what happened."""
    what = ("le processus d'analyse s'est arrêté sur ce message"
            if isinstance(cause, BrokenProcessPool) else f"{type(cause).__name__}: {cause}")
    return Examined(None, None, datetime.now(UTC), 0.0, f"erreur de traitement : {what}",
                    f"{type(cause).__name__}: {cause}")


class _Pool:
    """The workers, replaced when one of them dies; and a one-worker pool for retries."""

    def __init__(self, jobs: int, job: _Job[Any]) -> None:
        self.jobs, self.job = jobs, job
        self.main = self._new(jobs)
        self.solo: ProcessPoolExecutor | None = None
        self.retried = 0  # messages examined again after a worker died

    def _new(self, workers: int) -> ProcessPoolExecutor:
        # fork: the workers start with the caller's modules already imported, and the settings
        # are inherited rather than pickled. The caller holds no thread of its own then.
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        return ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                   initargs=(self.job, os.getpid()))

    def submit(self, chunk: list[Location]) -> Future[list[Result]]:
        try:
            return self.main.submit(_examine_chunk, chunk)
        except BrokenProcessPool:  # a worker died since the last chunk was handed out
            self.main.shutdown(wait=True, cancel_futures=True)
            self.main = self._new(self.jobs)
            return self.main.submit(_examine_chunk, chunk)

    def settle(self, chunk: list[Location], future: Future[list[Result]]) -> list[Result]:
        """The chunk's results, examined again one at a time if its worker failed it."""
        try:
            return future.result()
        except Exception:  # BrokenProcessPool, or a result that would not pickle
            self.retried += len(chunk)
            return [self._alone(location) for location in chunk]

    def _alone(self, location: Location) -> Result:
        if self.solo is None:
            self.solo = self._new(1)
        try:
            return self.solo.submit(_examine_chunk, [location]).result()[0]
        except BrokenProcessPool as exc:
            self.solo.shutdown(wait=True, cancel_futures=True)
            self.solo = None
            return self.job.finish(location, _failed(exc))
        except Exception as exc:  # the message's own failure, told in its place
            return self.job.finish(location, _failed(exc))

    def close(self) -> None:
        for executor in (self.main, self.solo):
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)


@dataclass
class Examination(Generic[T]):
    """Each message's examination, in input order (iterate once); :attr:`retried` tells how
    many were examined again after a worker died.

    ``finish`` turns a message's examination into what is yielded for it, in the process that
    examined it: by default (:func:`examined`) the examination itself. It must depend on the
    message alone (a module-level function or a ``functools.partial`` of one)."""

    locations: Iterable[Location]
    settings: Settings
    jobs: int = 1
    mailbox: str | None = None
    dated: bool = False
    retried: int = 0
    finish: Finish[T] = examined  # type: ignore[assignment]  # T is Examined by default

    def __iter__(self) -> Iterator[tuple[Location, T]]:
        job = _Job(self.settings, self.mailbox, self.dated, self.finish)
        if self.jobs <= 1:
            for location in self.locations:
                yield location, _raise_source_error(_examine_one(location, job))
            return
        # The geography built once, here, before the workers are forked (each inherits it,
        # and its own ``prepare`` finds it built); then the same freeze for this process,
        # which may conclude (0.30 s of full collections on those 10,000 messages; 0.06 s
        # frozen).
        prepare(self.settings)
        gc.freeze()
        pool = _Pool(self.jobs, job)
        window: deque[tuple[list[Location], Future[list[Result]]]] = deque()
        try:
            for chunk in _chunks(self.locations, CHUNK):
                window.append((chunk, pool.submit(chunk)))
                if len(window) >= AHEAD * self.jobs:
                    yield from self._settled(pool, *window.popleft())
            while window:
                yield from self._settled(pool, *window.popleft())
        finally:
            pool.close()
            gc.unfreeze()

    def _settled(self, pool: _Pool, chunk: list[Location], future: Future[list[Result]]
                 ) -> Iterator[tuple[Location, T]]:
        results = pool.settle(chunk, future)
        self.retried = pool.retried
        for location, result in zip(chunk, results, strict=True):
            yield location, _raise_source_error(result)


def _raise_source_error(result: Result) -> Any:
    if isinstance(result, SourceError):
        raise result
    return result


def _chunks(items: Iterable[Location], size: int) -> Iterator[list[Location]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk
