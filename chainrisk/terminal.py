"""Progress bars for long work on a terminal, silent when stderr is a file or pipe (cron, CI)."""

from __future__ import annotations

import sys

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def terminal_progress() -> Progress:
    """Rich progress bars on a terminal; silent when stderr is a file or pipe (cron, CI)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not sys.stderr.isatty(),
        transient=True,
    )
