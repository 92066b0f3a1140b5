"""Progress bars (chainrisk.terminal): the markets a run reads side by side draw their bars in one display, as rich
draws one live display at a time; a thread outside it draws none."""

from __future__ import annotations

import threading

from chainrisk import terminal


def _in_thread(work: object) -> None:
    thread = threading.Thread(target=work)  # type: ignore[arg-type]
    thread.start()
    thread.join()


def test_threads_bars_go_in_the_shared_display_and_leave_it_when_done() -> None:
    seen: list[list[str]] = []

    def market(name: str) -> None:
        with terminal.terminal_progress() as bar:
            task = bar.add_task(f"{name} logs", total=10)
            bar.update(task, completed=5)
            shared = terminal._SHARED
            assert shared is not None
            seen.append(sorted(t.description for t in shared.tasks))

    with terminal.shared_progress():
        shared = terminal._SHARED
        assert shared is not None
        with terminal.terminal_progress() as outer:  # the main thread's bars too
            outer.add_task("run", total=1)
            _in_thread(lambda: market("aave-v3"))
            _in_thread(lambda: market("morpho-blue"))
        assert seen == [["aave-v3 logs", "run"], ["morpho-blue logs", "run"]]
        assert shared.tasks == []  # each block's bars removed when it ended
    assert terminal._SHARED is None


def test_a_thread_outside_a_shared_display_draws_nothing() -> None:
    found: list[bool] = []

    def work() -> None:
        bars = terminal.terminal_progress()
        found.append(bars._progress.disable)

    _in_thread(work)
    assert found == [True]
