"""Progress bars for long work on a terminal, silent when stderr is a file or pipe (cron, CI)."""

from __future__ import annotations

import sys
import threading

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def terminal_progress() -> Progress:
    """Rich progress bars on a terminal; silent when stderr is a file or pipe (cron, CI), and off the main thread (the
    chains a run indexes side by side: rich draws one live display at a time)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not sys.stderr.isatty() or threading.current_thread() is not threading.main_thread(),
        transient=True,
    )
