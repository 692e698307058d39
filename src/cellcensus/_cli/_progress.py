"""Rich progress bars for library operations that report through ``cellcensus._progress``."""

from __future__ import annotations


from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cellcensus._cli._app import console
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import TracebackType


class RichProgress:
    """One bar per stage; byte stages show sizes, others counts. Silent when ``enabled`` is False."""

    def __init__(self, *, enabled: bool = True) -> None:
        self._bars = Progress(
            TextColumn("[bold]{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self._tasks: dict[str, tuple[Progress, TaskID]] = {}

    def __enter__(self) -> RichProgress:
        self._bars.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bars.stop()

    def start(self, stage: str, total: float | None, unit: str = "") -> None:
        """Add a bar for ``stage``."""
        bars = self._bars
        task = bars.add_task(stage, total=total, unit=unit if unit != "B" else "bytes")
        self._tasks[stage] = (bars, task)

    def advance(self, stage: str, amount: float = 1) -> None:
        """Advance the bar of ``stage``."""
        if stage in self._tasks:
            bars, task = self._tasks[stage]
            bars.advance(task, amount)

    def finish(self, stage: str) -> None:
        """Complete the bar of ``stage``."""
        if stage in self._tasks:
            bars, task = self._tasks[stage]
            total = bars.tasks[task].total
            if total is None:
                bars.update(task, total=1, completed=1)
            else:
                bars.update(task, completed=total)
