"""The polling of something running (a training run, an image loading, a deploy job):
:class:`Poller` calls a tick on the kernel's event loop, or on a thread without one."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable


class Poller:
    """Calls ``tick`` every ``interval`` seconds for as long as it returns True, so the panel
    follows the server (a training run's state, log and metrics) while the kernel stays free
    for clicks. ``tick`` shows its own errors.

    In a kernel the calls run on its event loop, between the messages from the browser: a
    widget changed from another thread while the kernel applies the browser's changes to it
    can lose the change (plotly's FigureWidget then stops drawing). Without a running loop
    (a plain Python process, where no browser talks back) they run on a daemon thread.
    """

    def __init__(self, tick: Callable[[], bool], interval: float) -> None:
        self.tick = tick
        self.interval = interval
        self._lock = threading.Lock()
        #: bumped by every start and stop: a scheduled call of an older round does nothing
        self._round = 0
        self._handle: asyncio.TimerHandle | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        thread = self._thread
        return self._handle is not None or (thread is not None and thread.is_alive())

    def start(self) -> None:
        """Start polling unless it already runs (a second start is a no-op)."""
        with self._lock:
            if self.running:
                return
            self._round += 1
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self._thread = threading.Thread(
                    target=self._run_thread, args=(self._round,), daemon=True
                )
                self._thread.start()
            else:
                self._handle = loop.call_later(self.interval, self._run_once, loop, self._round)

    def stop(self) -> None:
        with self._lock:
            self._round += 1
            if self._handle is not None:
                self._handle.cancel()
                self._handle = None
            self._thread = None

    def _current(self, round_: int) -> bool:
        return round_ == self._round

    def _run_once(self, loop: asyncio.AbstractEventLoop, round_: int) -> None:
        if not self._current(round_):
            return
        more = False
        try:
            more = self.tick()
        finally:  # an error ends the polling; the next start begins it again
            with self._lock:
                if self._current(round_):
                    self._handle = (
                        loop.call_later(self.interval, self._run_once, loop, round_)
                        if more
                        else None
                    )

    def _run_thread(self, round_: int) -> None:
        try:
            while True:
                time.sleep(self.interval)
                if not self._current(round_) or not self.tick():
                    return
        finally:
            with self._lock:
                if self._current(round_):
                    self._thread = None
