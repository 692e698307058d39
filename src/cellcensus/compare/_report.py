"""What a comparison found: one record per difference, one summary per object, the whole report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["CompareOptions", "CompareReport", "Difference", "ObjectResult"]

#: Root-collection metadata that differs between any two builds by design: when and by which
#: program version a build was made. Not compared unless asked (``ignore_metadata=()``).
DEFAULT_IGNORED_METADATA = frozenset(
    {"created_on", "git_commit_sha", "cellcensus_version", "census_build_date"}
)

#: Members of the root collection that only cellcensus writes (the gene-major copies and the
#: expression summary): not compared unless asked (``ignore_members=()``), so that a cellcensus
#: build and an official one compare equal.
DEFAULT_IGNORED_MEMBERS = frozenset({"cellcensus_genes"})

#: Kinds of difference, in the order the summary lists them.
Kind = Literal[
    "member",  # an object exists in one build only
    "type",  # the SOMA type of an object differs (DataFrame vs SparseNDArray, ...)
    "metadata",  # a metadata key differs
    "schema",  # column names or order differ
    "arrow-type",  # a column's Arrow type differs (value type, dictionary index type)
    "dictionary",  # a dictionary column's category values differ
    "shape",  # an array's shape or a dataframe's domain differs
    "rows",  # a row (soma_joinid or index key) exists in one build only
    "value",  # a cell of a table holds different values
    "coordinates",  # a stored coordinate of a sparse array exists in one build only
    "data",  # the value stored at a coordinate differs
]


@dataclass(frozen=True, kw_only=True)
class CompareOptions:
    """How to compare two builds.

    Parameters
    ----------
    max_differences
        Differences kept (and printed) per object; the rest are only counted.
    block_values
        Stored values read from each build per block of a sparse array: bounds memory
        (about 60 bytes per value for both builds together), whatever the array's size.
    block_rows
        Rows read from each build per block of a dataframe.
    rtol
        Relative tolerance for floating-point values (0: bit-identical, NaN equals NaN).
    dictionary_as_plain
        Treat a dictionary-encoded column and a plain column of the same value type (and two
        dictionary columns with different index types) as the same Arrow type. Values are
        compared decoded either way. Off by default: encoding changes what readers get
        (pandas categoricals), so it is a difference unless you decide it is not.
    ignore_metadata
        Metadata keys not compared (default: build time and program version).
    ignore_members
        Paths of objects not compared, e.g. ``"cellcensus_genes"`` (the default: what only
        cellcensus writes).
    """

    max_differences: int = 10
    block_values: int = 4_000_000
    block_rows: int = 250_000
    rtol: float = 0.0
    dictionary_as_plain: bool = False
    ignore_metadata: frozenset[str] = DEFAULT_IGNORED_METADATA
    ignore_members: frozenset[str] = DEFAULT_IGNORED_MEMBERS

    def __post_init__(self) -> None:
        from cellcensus.errors import BadInputError

        if self.max_differences < 0:
            msg = f"max_differences must be >= 0, got {self.max_differences}"
            raise BadInputError(msg, field="max_differences")
        if self.block_values < 1 or self.block_rows < 1:
            msg = "block_values and block_rows must be >= 1"
            raise BadInputError(msg, field="block_values")
        if not self.rtol >= 0:
            msg = f"rtol must be >= 0, got {self.rtol}"
            raise BadInputError(msg, field="rtol")


@dataclass(frozen=True, kw_only=True)
class Difference:
    """One difference between the builds, in the object at ``path``."""

    path: str
    kind: Kind
    detail: str

    def to_dict(self) -> dict[str, str]:
        """JSON form."""
        return {"path": self.path, "kind": self.kind, "detail": self.detail}


@dataclass(kw_only=True)
class ObjectResult:
    """The comparison of one object (collection, dataframe, array) present in either build."""

    path: str
    soma_type: str
    #: What was compared: rows of a dataframe, stored values of a sparse array, elements of a
    #: dense array (0 for a collection).
    compared: int = 0
    unit: str = ""
    #: Every difference found (``differences`` holds the first ``max_differences`` of them).
    n_differences: int = 0
    differences: list[Difference] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)

    @property
    def equal(self) -> bool:
        """Whether no difference was found."""
        return self.n_differences == 0

    def add(self, kind: Kind, detail: str, *, limit: int) -> None:
        """Record one difference; keep its detail while fewer than ``limit`` are kept."""
        self.add_examples(kind, 1, iter([detail]), limit=limit)

    def add_examples(self, kind: Kind, total: int, examples: Iterable[str], *, limit: int) -> None:
        """Record ``total`` differences of one kind, keeping details (drawn lazily from
        ``examples``) while fewer than ``limit`` are kept."""
        if total <= 0:
            return
        self.n_differences += total
        self.kinds[kind] = self.kinds.get(kind, 0) + total
        room = min(total, max(0, limit - len(self.differences)))
        for detail, _ in zip(examples, range(room), strict=False):
            self.differences.append(Difference(path=self.path, kind=kind, detail=detail))

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "path": self.path,
            "soma_type": self.soma_type,
            "compared": self.compared,
            "unit": self.unit,
            "equal": self.equal,
            "n_differences": self.n_differences,
            "kinds": dict(self.kinds),
            "differences": [d.to_dict() for d in self.differences],
        }


@dataclass(kw_only=True)
class CompareReport:
    """Every object of two builds compared: per-object results, in tree order."""

    a: str
    b: str
    options: CompareOptions
    objects: list[ObjectResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def equal(self) -> bool:
        """Whether the builds hold the same objects, types and values."""
        return all(o.equal for o in self.objects)

    @property
    def n_differences(self) -> int:
        """Number of differences over all objects."""
        return sum(o.n_differences for o in self.objects)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the CLI's ``--json``)."""
        o = self.options
        return {
            "a": self.a,
            "b": self.b,
            "equal": self.equal,
            "n_differences": self.n_differences,
            "seconds": round(self.seconds, 3),
            "options": {
                "max_differences": o.max_differences,
                "block_values": o.block_values,
                "block_rows": o.block_rows,
                "rtol": o.rtol,
                "dictionary_as_plain": o.dictionary_as_plain,
                "ignore_metadata": sorted(o.ignore_metadata),
                "ignore_members": sorted(o.ignore_members),
            },
            "objects": [r.to_dict() for r in self.objects],
        }
