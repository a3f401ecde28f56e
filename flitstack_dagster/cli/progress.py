"""Progress of a run's long steps on the console while Dagster runs them in this process.

The loads write their progress to the token ledger as they go (loading/ledger.py); a thread reads it
back and shows each step with its rate and ETA: a bar redrawn in place on a terminal; when the output
is piped (a log file gets no carriage returns), a plain line at most every `every` seconds and once per
`parts`-th of the step (10 %), so a slow machine prints no more lines than a fast one. A step shorter than `every`
leaves no line behind, so a small run's console stays short; a longer one ends with a line of its
total time, rate and tokens.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from flitstack_dagster.mapping.eta import spend_vs_plan
from flitstack_dagster.loading.ledger import Ledger, StepProgress

BAR_WIDTH = 24


def duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _tokens(p: StepProgress, rates: dict[str, float] | None) -> str:
    """The step's tokens, against the chosen record plan's estimate when it is known."""
    return (spend_vs_plan([p], rates) if rates else None) or f"{p.tokens:,} tokens"


def progress_text(p: StepProgress, rates: dict[str, float] | None = None) -> str:
    """`loaded_deals 120/300 (40%), 10.2 records/s, ETA 18 s, tokens 1,200 of ~3,000 estimated (+0.0% vs plan)`."""
    pct = f" ({p.done / p.total:.0%})" if p.total else ""
    eta = f", ETA {duration(p.eta_seconds)}" if p.eta_seconds is not None and not p.finished else ""
    return f"{p.step} {p.done:,}/{p.total:,}{pct}, {p.rate:.1f} records/s{eta}, {_tokens(p, rates)}"


def finished_text(p: StepProgress, rates: dict[str, float] | None = None) -> str:
    return (f"{p.step} {p.done:,}/{p.total:,} in {duration(p.seconds)} ({p.rate:.1f} records/s), "
            f"{_tokens(p, rates)}")


def _part(p: StepProgress, parts: int) -> int:
    return parts * p.done // p.total if p.total else 0


def bar(p: StepProgress, rates: dict[str, float] | None = None) -> str:
    filled = int(BAR_WIDTH * p.done / p.total) if p.total else BAR_WIDTH
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {progress_text(p, rates)}"


class ProgressWatcher:
    """Use as a context manager around a launch; shows the run's steps that report progress meanwhile."""

    def __init__(self, ledger: Ledger, run_key: str, out: TextIO | None = None, tty: bool | None = None,
                 every: float = 10.0, parts: int = 10, poll: float = 0.5, indent: str = "   ",
                 rates: Callable[[], dict[str, float]] | None = None):
        """`rates`: the chosen record plan's tokens per record of each load (mapping.eta.plan_rates), read
        once its first load reports (the plan is approved by then), so each load shows its spend against it."""
        self.ledger, self.run_key, self.out = ledger, run_key, out or sys.stdout
        self._rates_of, self._rates = rates, None
        self.tty = self.out.isatty() if tty is None else tty
        self.every, self.parts, self.poll, self.indent = every, parts, poll, indent
        self._seen: dict[str, StepProgress] = {}
        self._said: dict[str, tuple[float, int]] = {}  # step -> when its last plain line was printed, and its part
        self._bar_shown = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="flitstack-progress", daemon=True)
        self._since = 0.0

    def __enter__(self) -> "ProgressWatcher":
        self._since = time.time()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.tick()  # the last reports, e.g. a step that ended since the last poll
        self._clear_bar()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the console's progress must never stop the run
                pass

    def tick(self) -> None:
        for p in self.ledger.progress(self.run_key, self._since):
            if self._seen.get(p.step) == p:
                continue
            self._seen[p.step] = p
            self._show(p)

    def _plan_rates(self) -> dict[str, float] | None:
        if self._rates is None and self._rates_of is not None:
            try:
                self._rates = self._rates_of()
            except Exception:  # noqa: BLE001 - an estimate that cannot be made leaves the plain count
                self._rates = {}
        return self._rates

    def _show(self, p: StepProgress) -> None:
        now = time.monotonic()
        rates = self._plan_rates()
        last, part = self._said.setdefault(p.step, (now, 0))
        if p.finished:
            self._clear_bar()
            if p.seconds >= self.every:
                self._line(finished_text(p, rates))
        elif self.tty:
            self.out.write(f"\r\033[K{self.indent}{bar(p, rates)}")
            self.out.flush()
            self._bar_shown = True
        elif now - last >= self.every and _part(p, self.parts) > part:
            self._line(progress_text(p, rates))
            self._said[p.step] = (now, _part(p, self.parts))

    def _line(self, text: str) -> None:
        self.out.write(f"{self.indent}{text}\n")
        self.out.flush()

    def _clear_bar(self) -> None:
        if self._bar_shown:
            self.out.write("\r\033[K")
            self.out.flush()
            self._bar_shown = False


__all__ = ["ProgressWatcher", "bar", "duration", "finished_text", "progress_text"]
