"""The event stream an embedding application reads (supervisor side)."""

from __future__ import annotations

from collections import deque

import anyio
import anyio.lowlevel

import npf_core.plugin.events as ev

__all__ = ["EventStream"]


class EventStream:
    """The run's events for an embedding application: an async iterator that ends
    after ``RunFinished``. Unbounded (the run never waits for its reader); a plain
    object, so an abandoned or unfinished iteration leaves no resource open."""

    def __init__(self) -> None:
        self._items: deque[ev.Event] = deque()
        self._ended = False
        self._dropped = False
        self._wakeup: anyio.Event | None = None

    def put(self, event: ev.Event) -> None:
        if not (self._ended or self._dropped):
            self._items.append(event)
            self._wake()

    def end(self) -> None:
        """No more events: readers stop once they have the ones already put."""
        self._ended = True
        self._wake()

    async def aclose(self) -> None:
        """The reader is done: drop what is buffered, keep nothing more."""
        self._dropped = True
        self._items.clear()
        self.end()

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> ev.Event:
        await anyio.lowlevel.checkpoint()
        while not self._items:
            if self._ended:
                raise StopAsyncIteration
            if self._wakeup is None:
                self._wakeup = anyio.Event()
            await self._wakeup.wait()
        return self._items.popleft()
