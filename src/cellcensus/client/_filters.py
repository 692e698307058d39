"""Value filters: checking them before a query runs, and writing them from ontology terms.

A ``value_filter`` is a Python-like expression over the columns of ``obs`` or ``var`` (the
TileDB-SOMA query-condition grammar; see ``docs/client.md``). :func:`check_value_filter` checks
it before a query runs — its syntax and column names here, then the rest by TileDB-SOMA itself,
with a read of at most one row through the filter (its public ``DataFrame.read``) — and turns a
failure into a :class:`FilterError` that says what is wrong and, for an unknown column, which
columns exist.
"""

from __future__ import annotations

import ast
import functools
import logging
import warnings
from typing import TYPE_CHECKING

import pyarrow as pa
import tiledbsoma

from cellcensus.errors import BadInputError, FilterError

if TYPE_CHECKING:
    from collections.abc import Iterable

    import tiledbsoma as soma
    from cellxgene_ontology_guide.ontology_parser import OntologyParser

__all__ = [
    "MULTI_VALUE_SEPARATOR",
    "ONTOLOGY_SCHEMA_VERSION",
    "check_value_filter",
    "multi_value_filter",
    "ontology_filter",
    "ontology_terms",
]

logger = logging.getLogger(__name__)

#: Separator of multi-valued obs columns (``disease``, ``self_reported_ethnicity``, ...).
MULTI_VALUE_SEPARATOR = " || "
#: Ontology release set used to expand terms (the dataset schema the builder accepts).
ONTOLOGY_SCHEMA_VERSION = "7.0.0"
_MAX_SHOWN = 40


def _quote(values: Iterable[str]) -> str:
    return "[" + ", ".join(repr(v) for v in values) + "]"


def _syntax(exc: SyntaxError, expr: str) -> str:
    col = max((exc.offset or 1) - 1, 0)
    return (
        f"it does not parse ({exc.msg}):\n    {expr}\n    {' ' * col}^\n"
        "write comparisons as column == 'text' or column > 3, combine them with and / or, "
        "and use column in ['a', 'b'] for lists"
    )


def _column_names(tree: ast.AST) -> set[str]:
    """The bare names of a parsed filter (columns; ``attr("x")`` / ``val(...)`` calls aside)."""
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called}


def _is_text(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


def _type_problem(tree: ast.AST, schema: pa.Schema) -> str | None:
    """A comparison of a column with a value of the wrong kind (text with a number or the
    reverse), described; ``None`` when every compared constant fits its column."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare) or not isinstance(node.left, ast.Name):
            continue
        if node.left.id not in schema.names:
            continue
        text = _is_text(schema.field(node.left.id).type)
        for right in node.comparators:
            items = right.elts if isinstance(right, ast.List | ast.Tuple) else [right]
            for item in items:
                if not isinstance(item, ast.Constant):
                    continue
                if text != isinstance(item.value, str):
                    kind = "text" if text else "numbers or True/False"
                    return (
                        f"{item.value!r} does not match its column's type ({node.left.id!r} "
                        f"holds {kind}; text needs quotes, numbers and True/False must not be "
                        "quoted)"
                    )
    return None


def _first_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return lines[0].removeprefix("SOMAError: ") if lines else type(exc).__name__


def _compared_values(tree: ast.AST) -> dict[str, set[str]]:
    """Text values compared with ``==`` / ``in`` per column name, from a parsed filter."""
    out: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare) or len(node.ops) != 1:
            continue
        left, op, right = node.left, node.ops[0], node.comparators[0]
        if not isinstance(left, ast.Name):
            continue
        values: list[object] = []
        if isinstance(op, ast.Eq) and isinstance(right, ast.Constant):
            values = [right.value]
        elif isinstance(op, ast.In) and isinstance(right, ast.List | ast.Tuple):
            values = [e.value for e in right.elts if isinstance(e, ast.Constant)]
        texts = {v for v in values if isinstance(v, str)}
        if texts:
            out.setdefault(left.id, set()).update(texts)
    return out


def unknown_values(df: soma.DataFrame, expr: str, where: str) -> list[str]:
    """What :func:`warn_unknown_values` logs for ``expr`` on ``df`` (one message a column)."""
    try:
        compared = _compared_values(ast.parse(expr, mode="eval"))
        enum_cols = [
            c
            for c in compared
            if c in df.schema.names and pa.types.is_dictionary(df.schema.field(c).type)
        ]
        if not enum_cols:
            return []
        enums = df.get_enumeration_values(enum_cols)
    except Exception:
        logger.debug("could not check filter values of %s", where, exc_info=True)
        return []
    messages = []
    for col in enum_cols:
        known = {str(v) for v in enums[col].to_pylist()}
        missing = sorted(compared[col] - known)
        if missing:
            sample = ", ".join(repr(v) for v in sorted(known)[:10])
            messages.append(
                f"{where}: column {col!r} never holds {', '.join(repr(v) for v in missing)} "
                f"(some of its values: {sample}); the filter will not match those"
            )
    return messages


def log_unknown_values(messages: list[str]) -> None:
    """Log the messages of :func:`unknown_values` as warnings."""
    for message in messages:
        logger.warning("%s", message)


def warn_unknown_values(df: soma.DataFrame, expr: str, where: str) -> None:
    """Log (not fail) when a filter compares a categorical column with a value it never holds
    — the usual cause of an unexpectedly empty result (e.g. ``sex == 'Male'``)."""
    log_unknown_values(unknown_values(df, expr, where))


def checked_filter_messages(df: soma.DataFrame, value_filter: str, *, where: str) -> list[str]:
    """:func:`check_value_filter` (raising as it does), then :func:`unknown_values`: the
    messages to log at each use of the filter."""
    check_value_filter(df, value_filter, where=where, warn=False)
    return unknown_values(df, value_filter, where)


def check_value_filter(
    df: soma.DataFrame, value_filter: str | None, *, where: str, warn: bool = True
) -> None:
    """Check a value filter against a DataFrame's schema, as TileDB-SOMA will parse it.

    Parameters
    ----------
    df
        The ``obs`` or ``var`` DataFrame the filter is for.
    value_filter
        The filter (``None`` is accepted and means "everything").
    where
        What the filter is for, for messages (e.g. ``"obs value_filter (homo_sapiens)"``).
    warn
        Also log the values compared with a categorical column that it never holds
        (:func:`warn_unknown_values`).

    Raises
    ------
    FilterError
        (a ``BadInputError`` and a ``tiledbsoma.SOMAError``) when the filter does not parse,
        names an unknown column, or compares a column with a value of the wrong type.
    """
    if value_filter is None:
        return
    if not isinstance(value_filter, str) or not value_filter.strip():
        msg = f"{where}: the filter must be a non-empty string, got {value_filter!r}"
        raise FilterError(msg)
    names = list(df.schema.names)
    try:
        tree = ast.parse(value_filter.strip(), mode="eval")
    except SyntaxError as e:
        msg = f"{where} {value_filter!r} is not valid: {_syntax(e, value_filter.strip())}"
        raise FilterError(msg) from e
    unknown = sorted(_column_names(tree) - set(names))
    if unknown:
        shown = ", ".join(names[:_MAX_SHOWN]) + (", ..." if len(names) > _MAX_SHOWN else "")
        msg = (
            f"{where} {value_filter!r} is not valid: Column {', '.join(unknown)} does not exist "
            f"in the schema; the columns are: {shown}"
        )
        raise FilterError(msg)
    problem = _type_problem(tree, df.schema)
    if problem is not None:
        msg = f"{where} {value_filter!r} is not valid: {problem}"
        raise FilterError(msg)
    try:  # the rest (operators, value types) as TileDB-SOMA applies it: read <= 1 row through it
        df.read(coords=([0],), value_filter=value_filter, column_names=["soma_joinid"]).concat()
    except tiledbsoma.SOMAError as e:
        try:  # a read that fails without the filter too is not the filter's fault
            df.read(coords=([0],), column_names=["soma_joinid"]).concat()
        except tiledbsoma.SOMAError:
            raise e from None
        msg = f"{where} {value_filter!r} is not valid: {_first_line(e)}"
        raise FilterError(msg) from e
    if warn:
        warn_unknown_values(df, value_filter, where)


@functools.cache
def _parser(schema_version: str) -> OntologyParser:
    from cellxgene_ontology_guide.ontology_parser import OntologyParser

    with warnings.catch_warnings():
        # the guide marks the 7.0.0 release deprecated; it is the one the census builder uses
        warnings.simplefilter("ignore", DeprecationWarning)
        return OntologyParser(f"v{schema_version}")


def _term_id(parser: OntologyParser, term: str, ontology: str) -> str:
    if parser.is_valid_term_id(term):
        return term
    if ":" in term and term.split(":", 1)[0].isupper():
        msg = f"{term!r} is not a known {ontology} term id (ontologies of schema "
        msg += f"{ONTOLOGY_SCHEMA_VERSION})"
        raise BadInputError(msg)
    found = parser.get_term_id_by_label(term, ontology)
    if found is None:
        msg = (
            f"{term!r} is neither a term id nor the exact label of a {ontology} term; give an id "
            f"such as {'CL:0000084' if ontology == 'CL' else 'UBERON:0002048'} or an exact label"
        )
        raise BadInputError(msg)
    return str(found)


def ontology_terms(
    terms: Iterable[str], ontology: str, *, schema_version: str = ONTOLOGY_SCHEMA_VERSION
) -> list[str]:
    """Every term id under the given terms (the terms included), sorted.

    Lifecycle: experimental.

    Parameters
    ----------
    terms
        Term ids (``"CL:0000084"``) or exact labels (``"T cell"``).
    ontology
        ``"CL"``, ``"UBERON"``, ``"MONDO"``, ... (used to look labels up).
    schema_version
        Dataset schema whose ontology releases to use.

    Returns
    -------
    list[str]
        Term ids, descendants by ``is_a`` and ``part_of`` as ``cellxgene-ontology-guide``
        defines them.

    Raises
    ------
    BadInputError
        For an unknown term id or label.

    Examples
    --------
    >>> "CL:0000625" in ontology_terms(["T cell"], "CL")  # CD8+ alpha-beta T cell
    True
    """
    parser = _parser(schema_version)
    out: set[str] = set()
    for term in terms:
        tid = _term_id(parser, term.strip(), ontology)
        out.update(parser.get_term_descendants(tid, include_self=True))
    return sorted(out)


def multi_value_filter(column: str, any_of: Iterable[str], present: Iterable[str]) -> str:
    """A filter matching cells whose multi-valued ``column`` holds any of ``any_of``.

    Lifecycle: experimental.

    Multi-valued columns (``disease``, ``disease_ontology_term_id``, ...) join several values
    with ``" || "`` in one string; ``==`` only matches the whole string. This expands to an
    ``in`` list over every value present in the column that contains one of the wanted values.

    Parameters
    ----------
    column
        Column name.
    any_of
        Wanted single values.
    present
        The values the column holds (e.g. its enumeration:
        ``obs.get_enumeration_values([column])[column]``).

    Returns
    -------
    str
        ``"column in [...]"``; ``"column in ['']"``-free: when nothing matches, a filter that
        matches no cell (``soma_joinid < 0``).

    Examples
    --------
    >>> multi_value_filter("disease", ["COVID-19"], ["normal", "asthma || COVID-19", "COVID-19"])
    "disease in ['COVID-19', 'asthma || COVID-19']"
    """
    wanted = {v.strip() for v in any_of}
    hits = sorted(
        {v for v in present if wanted & {p.strip() for p in str(v).split(MULTI_VALUE_SEPARATOR)}}
    )
    if not hits:
        return "soma_joinid < 0"
    return f"{column} in {_quote(hits)}"


def ontology_filter(
    *,
    cell_type_descendants_of: Iterable[str] | None = None,
    tissue_descendants_of: Iterable[str] | None = None,
    disease_descendants_of: Iterable[str] | None = None,
    obs: soma.DataFrame | None = None,
    schema_version: str = ONTOLOGY_SCHEMA_VERSION,
) -> str:
    """A ``obs`` value filter selecting cells by ontology terms *and everything under them*.

    Lifecycle: experimental.

    "All T cells" is ``cell_type_descendants_of=["CL:0000084"]`` (or ``["T cell"]``): the
    filter lists every cell type term under CL:0000084. Several arguments are combined with
    ``and``; several terms in one argument with ``or``. Combine the result with other
    conditions as ``f"({flt}) and sex == 'female'"``.

    Parameters
    ----------
    cell_type_descendants_of
        Cell Ontology ids or exact labels; matches ``cell_type_ontology_term_id``.
    tissue_descendants_of
        UBERON ids or exact labels; matches ``tissue_ontology_term_id``.
    disease_descendants_of
        MONDO ids or exact labels (``PATO:0000461`` for normal); matches
        ``disease_ontology_term_id``, which may hold several terms joined by ``" || "``: a
        cell matches when any of its terms is under a given one. Needs ``obs``.
    obs
        The organism's ``obs`` DataFrame. When given, term lists are cut to the values the
        census holds (shorter filters), which also makes multi-valued matching possible.
    schema_version
        Dataset schema whose ontology releases to use.

    Returns
    -------
    str
        A value filter.

    Raises
    ------
    BadInputError
        For unknown terms, no arguments, or ``disease_descendants_of`` without ``obs``.

    Examples
    --------
    >>> ontology_filter(cell_type_descendants_of=["CL:0000084"]).startswith(
    ...     "cell_type_ontology_term_id in ['CL:0000084'"
    ... )
    True
    """
    parts: list[str] = []
    specs = (
        ("cell_type_ontology_term_id", cell_type_descendants_of, "CL", False),
        ("tissue_ontology_term_id", tissue_descendants_of, "UBERON", False),
        ("disease_ontology_term_id", disease_descendants_of, "MONDO", True),
    )
    for column, given, ontology, multi in specs:
        if given is None:
            continue
        terms_given = [given] if isinstance(given, str) else list(given)
        if not terms_given:
            continue
        ids = ontology_terms(terms_given, ontology, schema_version=schema_version)
        if multi and obs is None:
            msg = (
                "disease_descendants_of needs obs= (the organism's obs DataFrame): disease terms "
                "are multi-valued (' || '), so the filter must list the combinations present"
            )
            raise BadInputError(msg)
        if obs is not None:
            present = [str(v) for v in obs.get_enumeration_values([column])[column].to_pylist()]
            if multi:
                parts.append(multi_value_filter(column, ids, present))
                continue
            idset = set(ids)
            ids = sorted(v for v in present if v in idset)
            if not ids:
                parts.append("soma_joinid < 0")
                continue
        parts.append(f"{column} in {_quote(ids)}")
    if not parts:
        msg = "ontology_filter needs at least one of the *_descendants_of arguments"
        raise BadInputError(msg)
    return parts[0] if len(parts) == 1 else " and ".join(f"({p})" for p in parts)
