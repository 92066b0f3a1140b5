"""Progress bars for long work on a terminal, silent when stderr is a file or pipe (cron, CI)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

#: The display the threads of a `shared_progress` block draw their bars in (rich draws one live display at a time).
_SHARED: Progress | None = None


def _progress(silent: bool = False) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=silent or not sys.stderr.isatty(),
        transient=True,
    )


class Bars:
    """What a `with terminal_progress() as bar` block sees: its own bars, in the shared display or one of its own;
    the shared display's bars of the block are removed when it ends."""

    def __init__(self, progress: Progress, own: bool) -> None:
        self._progress, self._own, self._tasks = progress, own, list[TaskID]()

    def __enter__(self) -> Bars:
        if self._own:
            self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._own:
            self._progress.stop()
            return
        for task in self._tasks:
            self._progress.remove_task(task)

    def add_task(self, description: str, total: float | None = None, **fields: Any) -> TaskID:
        task = self._progress.add_task(description, total=total, **fields)
        self._tasks.append(task)
        return task

    def update(self, task: TaskID, **changes: Any) -> None:
        self._progress.update(task, **changes)


def terminal_progress() -> Bars:
    """Rich progress bars on a terminal; silent when stderr is a file or pipe (cron, CI). Inside `shared_progress`
    (the markets a run reads side by side, each in its thread) every thread's bars go in the one shared display;
    elsewhere off the main thread they are silent."""
    if _SHARED is not None:
        return Bars(_SHARED, own=False)
    return Bars(_progress(silent=threading.current_thread() is not threading.main_thread()), own=True)


@contextmanager
def shared_progress() -> Iterator[None]:
    """One live display for the block's threads (terminal_progress in any of them adds its bars to it)."""
    global _SHARED
    progress = _progress()
    with progress:
        _SHARED = progress
        try:
            yield
        finally:
            _SHARED = None
