"""Rich progress bars for library operations that report through ``cellcensus._progress``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich import filesize
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from cellcensus._cli._app import console

if TYPE_CHECKING:
    from types import TracebackType


class _AmountColumn(ProgressColumn):
    """``done/total unit``; byte stages in human units (kB, MB, GB)."""

    def render(self, task: Task) -> Text:
        unit = str(task.fields.get("unit", ""))
        total = "?" if task.total is None else None
        if unit == "B":
            done = filesize.decimal(int(task.completed))
            of = total or filesize.decimal(int(task.total or 0))
            return Text(f"{done}/{of}")
        of = total or f"{int(task.total or 0)}"
        return Text(f"{int(task.completed)}/{of} {unit}".rstrip())


class RichProgress:
    """One bar per stage, on stderr. Silent when ``enabled`` is False."""

    def __init__(self, *, enabled: bool = True) -> None:
        self._bars = Progress(
            TextColumn("[bold]{task.description:<12}"),
            BarColumn(),
            _AmountColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

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
        self._tasks[stage] = self._bars.add_task(stage, total=total, unit=unit)

    def advance(self, stage: str, amount: float = 1) -> None:
        """Advance the bar of ``stage``."""
        if stage in self._tasks:
            self._bars.advance(self._tasks[stage], amount)

    def finish(self, stage: str) -> None:
        """Complete the bar of ``stage``."""
        if stage in self._tasks:
            task = self._tasks[stage]
            total = self._bars.tasks[task].total
            if total is None:
                self._bars.update(task, total=1, completed=1)
            else:
                self._bars.update(task, completed=total)
