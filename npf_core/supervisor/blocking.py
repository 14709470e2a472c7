"""The sync entry points' way into the async supervisor: :func:`run_blocking`.

``anyio.run`` refuses to start a second event loop in a thread that already runs
one, and a Jupyter cell (or an async application's callback, or a thread running a
loop of its own) is exactly such a place: NeuronPerf's users live in notebooks.
So from there the run goes to a helper thread with a loop of its own, and the
calling thread waits for it (a sync call blocks its caller, in a notebook as
anywhere). An interrupt of the waiting thread (the notebook's stop button sends
SIGINT) cancels the run, waits until every child is reaped, and is re-raised.

Where no loop runs in the calling thread (a script), the run uses that thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import anyio.from_thread

__all__ = ["loop_running_here", "run_blocking"]

T = TypeVar("T")
#: how often the waiting thread wakes (an interrupt is seen at once on POSIX anyway)
_POLL_S = 0.2


def loop_running_here() -> bool:
    """Whether the calling thread is inside a running event loop (asyncio, trio or
    anything sniffio knows), where ``anyio.run`` would refuse to start."""
    try:
        import sniffio

        sniffio.current_async_library()
        return True
    except ImportError:  # pragma: no cover - anyio depends on sniffio
        pass
    except sniffio.AsyncLibraryNotFoundError:
        pass
    try:
        asyncio.get_running_loop()  # a loop running a plain callback, no task
    except RuntimeError:
        return False
    return True


def run_blocking(fn: Callable[[], Awaitable[T]]) -> T:
    """Run the coroutine function ``fn`` to its end and return its result, from
    sync code: in this thread, or in a helper thread when this one already runs an
    event loop."""
    if not loop_running_here():
        return anyio.run(fn)
    return _in_helper_thread(fn)


def _in_helper_thread(fn: Callable[[], Awaitable[T]]) -> T:
    with anyio.from_thread.start_blocking_portal() as portal:
        future = portal.start_task_soon(fn)
        try:
            return future.result()
        except BaseException:  # KeyboardInterrupt (a notebook's stop button) or the like
            if not future.done():
                future.cancel()  # cancels the run: its children are reaped before it ends
                _wait_uninterrupted(future)
            raise


def _wait_uninterrupted(future: concurrent.futures.Future[Any]) -> None:
    """Wait for the cancelled run to end; a second interrupt meanwhile is not
    allowed to leave its children behind."""
    while True:
        try:
            concurrent.futures.wait([future], timeout=_POLL_S)
            if future.done():
                return
        except KeyboardInterrupt:
            continue
