"""How an export's memory budget is split between TileDB, the X chunk and the selection."""

from __future__ import annotations

from dataclasses import dataclass

from cellcensus.client._estimate import format_bytes
from cellcensus.errors import BadInputError

__all__ = [
    "BYTES_PER_SELECTED_ROW",
    "BYTES_PER_VALUE",
    "MIN_BUDGET",
    "MemoryPlan",
    "memory_plan",
]

MiB = 1024 * 1024
#: Smallest budget accepted (TileDB needs some room for one tile of X).
MIN_BUDGET = 32 * MiB
#: Bytes of memory per selected cell that the budget must also cover (joinids, nnz).
BYTES_PER_SELECTED_ROW = 16


@dataclass(frozen=True, kw_only=True)
class MemoryPlan:
    """How a memory budget is split (measured on tiledbsoma 2.3: an unordered read costs about
    9x its result buffer; a chunk of X costs 20 bytes per value: 12 gathered, 8 as CSR)."""

    budget: int
    #: TileDB-SOMA result buffer bytes (``soma.init_buffer_bytes``) per read: ~budget/32.
    read_buffer: int
    #: TileDB's own memory budget for a read (``sm.mem.total_budget``).
    tiledb_budget: int
    #: Most X values gathered at once (one chunk of cells): ~budget/2 at 20 bytes per value.
    values_per_chunk: int
    #: Most cells per X read (the length of its coordinate list).
    cells_per_read: int
    #: Rows per ``obs``/``var`` chunk.
    rows_per_chunk: int

    def tiledb_config(self) -> dict[str, str | float | None]:
        """TileDB configuration enforcing the plan."""
        return {
            "soma.init_buffer_bytes": str(self.read_buffer),
            "py.init_buffer_bytes": str(self.read_buffer),
            "sm.mem.total_budget": str(self.tiledb_budget),
            "sm.memory_budget": str(self.tiledb_budget // 2),
            "sm.memory_budget_var": str(self.tiledb_budget // 2),
        }


#: Bytes per X value while a chunk is gathered and converted (see :class:`MemoryPlan`).
BYTES_PER_VALUE = 20


def memory_plan(budget: int, n_obs_selected: int, n_var_selected: int) -> MemoryPlan:
    """Split ``budget`` bytes between TileDB, the X chunk and the selection's joinids.

    Raises
    ------
    BadInputError
        When the budget is below :data:`MIN_BUDGET` or cannot hold the selection's joinids.
    """
    fixed = BYTES_PER_SELECTED_ROW * (n_obs_selected + n_var_selected)
    if budget < MIN_BUDGET or fixed > budget // 4:
        need = max(MIN_BUDGET, 4 * fixed)
        msg = (
            f"memory_budget {format_bytes(budget)} is too small for this query "
            f"({n_obs_selected:,} cells, {n_var_selected:,} genes): give at least "
            f"{format_bytes(need)}"
        )
        raise BadInputError(msg, field="memory_budget")
    room = budget - fixed
    read_buffer = int(min(max(room // 32, MiB // 2), 128 * MiB))
    return MemoryPlan(
        budget=budget,
        read_buffer=read_buffer,
        tiledb_budget=int(min(max(room // 8, 8 * MiB), 2048 * MiB)),
        values_per_chunk=int(max(room // (2 * BYTES_PER_VALUE), 4096)),
        cells_per_read=int(max(room // 256, 4096)),
        rows_per_chunk=int(max(min(room // 4096, 1 << 20), 1024)),
    )
