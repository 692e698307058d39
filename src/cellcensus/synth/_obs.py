"""Cell metadata (obs): donors, samples, cell types, assays, barcodes, labels and join ids."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, cast

import numpy as np
import pandas as pd
import xxhash

from cellcensus.errors import BadInputError
from cellcensus.synth._catalog import (
    CULTURE_TISSUES,
    FEMALE,
    MALE,
    MULTI_DISEASES,
    NORMAL,
    ORGANOID_TISSUES,
    TISSUES,
    TissueInfo,
    organism_info,
    suspension_options,
    term_label,
)
from cellcensus.synth._random import Stream, generator

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

    from cellcensus.synth._spec import DatasetSpec

__all__ = ["LABEL_COLUMNS", "SUBMISSION_COLUMNS", "CellTable", "add_labels", "make_cells"]

logger = logging.getLogger(__name__)

#: obs columns a curator submits, in the order written.
SUBMISSION_COLUMNS: Final = (
    "assay_ontology_term_id",
    "cell_type_ontology_term_id",
    "development_stage_ontology_term_id",
    "disease_ontology_term_id",
    "self_reported_ethnicity_ontology_term_id",
    "sex_ontology_term_id",
    "tissue_ontology_term_id",
    "tissue_type",
    "donor_id",
    "is_primary_data",
    "suspension_type",
)
#: Label columns the portal adds (in cellxgene-schema's schema-definition order), from the
#: term-id column they label.
LABEL_COLUMNS: Final = {
    "cell_type": "cell_type_ontology_term_id",
    "assay": "assay_ontology_term_id",
    "disease": "disease_ontology_term_id",
    "sex": "sex_ontology_term_id",
    "tissue": "tissue_ontology_term_id",
    "self_reported_ethnicity": "self_reported_ethnicity_ontology_term_id",
    "development_stage": "development_stage_ontology_term_id",
}
_BASES: Final = np.frombuffer(b"ACGT", dtype=np.uint8)
_B85: Final = np.frombuffer(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~",
    dtype=np.uint8,
)  # the alphabet of base64.b85encode
_BARCODE_MULTIPLIER: Final = 2654435761  # odd, so row -> code is a bijection modulo 2**32
_SIZE_FACTOR_SD: Final = 0.45


@dataclass(frozen=True)
class CellTable:
    """The cells of a generated dataset.

    ``frame`` holds the submission columns; the arrays hold what the counts model needs.
    """

    frame: pd.DataFrame
    cell_types: tuple[str, ...]
    cell_type_code: npt.NDArray[np.int32]
    assays: tuple[str, ...]
    assay_code: npt.NDArray[np.int32]
    size_factor: npt.NDArray[np.float32]


def _weights(k: int) -> npt.NDArray[np.float64]:
    """The first option most frequent: weights 1, 1/2, 1/3, ... normalized."""
    w = 1.0 / np.arange(1, k + 1)
    return np.asarray(w / w.sum(), dtype=np.float64)


def _categorical(
    codes: npt.NDArray[np.integer], categories: list[str] | tuple[str, ...]
) -> pd.Categorical:
    """A categorical of ``categories[codes]`` with only the used values as categories, sorted
    (as ``astype("category")`` makes them); ``categories`` may repeat values."""
    unique, inverse = np.unique(np.asarray(categories, dtype=str), return_inverse=True)
    value_codes = inverse[codes]
    used = np.unique(value_codes)
    remap = np.full(len(unique), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return pd.Categorical.from_codes(remap[value_codes], categories=unique[used].astype(object))


def barcodes(dataset_key: int, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.str_]:
    """Return 10x-style cell barcodes (``"ACGT...-1"``), unique within a dataset.

    Parameters
    ----------
    dataset_key
        Integer key of the dataset.
    rows
        Row numbers of the cells.

    Returns
    -------
    numpy.ndarray
        Unicode strings of 16 bases and ``"-1"``.
    """
    code = (rows.astype(np.uint64) * np.uint64(_BARCODE_MULTIPLIER) + np.uint64(dataset_key)) & (
        np.uint64(0xFFFFFFFF)
    )
    letters = np.empty((len(rows), 18), dtype=np.uint8)  # one byte per letter: small for 1M cells
    for position in range(16):
        shift = np.uint64(30 - 2 * position)
        letters[:, position] = _BASES[((code >> shift) & np.uint64(3)).astype(np.intp)]
    letters[:, 16:] = np.frombuffer(b"-1", dtype=np.uint8)
    return letters.view("S18").ravel().astype("U18")


def observation_joinids(index: pd.Index) -> npt.NDArray[np.object_]:
    """Return the ``observation_joinid`` values the portal writes for an obs index.

    Same algorithm as cellxgene-schema's label writer: the Base85 text of the big-endian XXH3-64
    digest of each index string.

    Parameters
    ----------
    index
        The obs index (unique strings).

    Returns
    -------
    numpy.ndarray
        Ten-character strings, one per cell.
    """
    digest = xxhash.xxh3_64_intdigest
    # UTF-8 bytes: xxhash 4 refuses str (xxhash 3 hashed a str as its UTF-8 bytes: same digests)
    values = np.fromiter(
        (digest(str(v).encode()) for v in index), dtype=np.uint64, count=len(index)
    )
    # base64.b85encode of the 8 big-endian bytes: two 32-bit words of five base-85 digits each
    chars = np.empty((len(values), 10), dtype=np.uint8)
    for w, word in enumerate((values >> np.uint64(32), values & np.uint64(0xFFFFFFFF))):
        rest = word.copy()
        for position in range(4, -1, -1):
            chars[:, 5 * w + position] = _B85[(rest % np.uint64(85)).astype(np.intp)]
            rest //= np.uint64(85)
    return chars.view("S10").ravel().astype("U10").astype(object)


def _tissue_choices(spec: DatasetSpec, rng: np.random.Generator) -> list[tuple[str, TissueInfo]]:
    """The (tissue_type, tissue) samples of the dataset, in tissue-type order."""
    catalogs = {"tissue": TISSUES, "organoid": ORGANOID_TISSUES}
    catalogs["primary cell culture"] = CULTURE_TISSUES
    known = {t.term_id for cat in catalogs.values() for t in cat}
    unknown = sorted(set(spec.tissues) - known)
    if unknown:
        msg = f"tissues {unknown} are not in the synthetic catalog; use some of {sorted(known)}"
        raise BadInputError(
            msg,
            dataset_id=spec.dataset_id,
            field="tissues",
        )
    samples: list[tuple[str, TissueInfo]] = []
    for tissue_type in spec.canonical_tissue_types:
        catalog = catalogs[tissue_type]
        chosen = [t for t in catalog if t.term_id in spec.tissues]
        if not chosen:
            n = 1 if tissue_type != "tissue" else int(rng.integers(1, 4))
            picks = np.sort(rng.choice(len(catalog), size=n, replace=False))
            chosen = [catalog[int(i)] for i in picks]
        samples.extend((tissue_type, t) for t in chosen)
    return samples


def _donors(
    spec: DatasetSpec, rng: np.random.Generator, diseases: tuple[str, ...], n_donors: int
) -> dict[str, npt.NDArray[np.object_]]:
    info = organism_info(spec.organism_ontology_term_id)
    sex = rng.choice(
        np.array([FEMALE, MALE, "unknown"], dtype=object), size=n_donors, p=[0.48, 0.48, 0.04]
    )
    # the last stage listed (a child or an old animal) is rarer than the adult ones
    stage_w = np.ones(len(info.development_stages))
    stage_w[-1] = 0.25
    stage = rng.choice(
        np.array(info.development_stages, dtype=object), size=n_donors, p=stage_w / stage_w.sum()
    )
    ethnicity = rng.choice(
        np.array(info.ethnicities, dtype=object),
        size=n_donors,
        p=_weights(len(info.ethnicities)),
    )
    if diseases:
        sick = rng.random(n_donors) < 0.4
        disease = np.where(
            sick, rng.choice(np.array(diseases, dtype=object), size=n_donors), NORMAL
        ).astype(object)
    else:
        disease = np.full(n_donors, NORMAL, dtype=object)
    return {"sex": sex, "stage": stage, "ethnicity": ethnicity, "disease": disease}


def make_cells(spec: DatasetSpec, *, seed: int, dataset_key: int) -> CellTable:
    """Generate the cell metadata of a dataset (vectorized; deterministic by seed).

    Parameters
    ----------
    spec
        The dataset.
    seed
        Corpus seed.
    dataset_key
        Integer key of the dataset.

    Returns
    -------
    CellTable
        obs in submission form plus per-cell codes for the counts model.
    """
    n = spec.n_cells
    rng = generator(seed, dataset_key, Stream.OBS)
    samples = _tissue_choices(spec, generator(seed, dataset_key, Stream.TISSUES))

    # tissue type, then a tissue sample of that type
    types = spec.canonical_tissue_types
    type_code = rng.choice(len(types), size=n, p=_weights(len(types)))
    sample_code = np.empty(n, dtype=np.int64)
    for t, tissue_type in enumerate(types):
        members = [i for i, (tt, _) in enumerate(samples) if tt == tissue_type]
        mask = type_code == t
        sample_code[mask] = rng.choice(members, size=int(mask.sum()))

    # cell types: Dirichlet abundances per sample
    cell_types = tuple(sorted({ct for _, tissue in samples for ct in tissue.cell_types}))
    ct_index = {ct: i for i, ct in enumerate(cell_types)}
    cell_type_code = np.empty(n, dtype=np.int32)
    for s, (_, tissue) in enumerate(samples):
        mask = sample_code == s
        abundance = rng.dirichlet(np.full(len(tissue.cell_types), 1.5))
        local = rng.choice(len(tissue.cell_types), size=int(mask.sum()), p=abundance)
        cell_type_code[mask] = np.array([ct_index[c] for c in tissue.cell_types])[local]

    # donors and their attributes
    n_donors = int(np.clip(n // 2500 + 2, 2, 24))
    donor_code = rng.choice(n_donors, size=n, p=rng.dirichlet(np.full(n_donors, 3.0)))
    diseases = tuple(sorted({d for _, tissue in samples for d in tissue.diseases}))
    donor = _donors(spec, rng, diseases, n_donors)
    # per-cell codes into disease_values: the donor's disease, or a two-disease value
    disease_values = [*np.unique(donor["disease"].astype(str)), *MULTI_DISEASES]
    donor_disease = np.searchsorted(disease_values[: -len(MULTI_DISEASES)], donor["disease"])
    disease_code = donor_disease[donor_code]
    n_multi = round(spec.multi_disease_fraction * n)
    if n_multi:
        multi_cells = rng.choice(n, size=n_multi, replace=False)
        first_multi = len(disease_values) - len(MULTI_DISEASES)
        disease_code[multi_cells] = first_multi + rng.choice(len(MULTI_DISEASES), size=n_multi)

    # assays and suspension types
    assay_code = rng.choice(len(spec.assays), size=n, p=_weights(len(spec.assays))).astype(np.int32)
    nuclei = np.array([tissue.nuclei and tt == "tissue" for tt, tissue in samples])[sample_code]
    suspension_values = ("cell", "nucleus", "na")
    suspension_code = np.zeros(n, dtype=np.int64)
    for a, assay in enumerate(spec.assays):
        options = suspension_options(assay, spec.schema_version)
        default = "cell" if "cell" in options else options[0]
        on_nuclei = "nucleus" if "nucleus" in options else default
        mask = assay_code == a
        suspension_code[mask] = np.where(
            nuclei[mask],
            suspension_values.index(on_nuclei),
            suspension_values.index(default),
        )

    size_factor = np.exp(rng.normal(0.0, _SIZE_FACTOR_SD, n)).astype(np.float32)
    short = f"{dataset_key & 0xFFFF:04X}"
    donor_ids = [f"D{short}-{i + 1:02d}" for i in range(n_donors)]
    sample_tissues = [tissue.term_id for _, tissue in samples]
    sample_types = [tt for tt, _ in samples]

    stage_cats, stage_codes = np.unique(donor["stage"], return_inverse=True)
    eth_cats, eth_codes = np.unique(donor["ethnicity"], return_inverse=True)
    sex_cats, sex_codes = np.unique(donor["sex"], return_inverse=True)
    frame = pd.DataFrame(
        {
            "assay_ontology_term_id": _categorical(assay_code, spec.assays),
            "cell_type_ontology_term_id": _categorical(cell_type_code, cell_types),
            "development_stage_ontology_term_id": _categorical(
                stage_codes[donor_code], list(stage_cats)
            ),
            "disease_ontology_term_id": _categorical(disease_code, disease_values),
            "self_reported_ethnicity_ontology_term_id": _categorical(
                eth_codes[donor_code], list(eth_cats)
            ),
            "sex_ontology_term_id": _categorical(sex_codes[donor_code], list(sex_cats)),
            "tissue_ontology_term_id": _categorical(sample_code, sample_tissues),
            "tissue_type": _categorical(sample_code, sample_types),
            "donor_id": _categorical(donor_code, donor_ids),
            "is_primary_data": np.ones(n, dtype=bool),
            "suspension_type": _categorical(suspension_code, suspension_values),
        },
        index=pd.Index(barcodes(dataset_key, np.arange(n, dtype=np.int64)), dtype=object),
    )
    return CellTable(
        frame=frame,
        cell_types=cell_types,
        cell_type_code=cell_type_code,
        assays=spec.assays,
        assay_code=assay_code,
        size_factor=size_factor,
    )


def add_labels(frame: pd.DataFrame, schema_version: str) -> pd.DataFrame:
    """Return obs with the portal-added label columns and ``observation_joinid``.

    Parameters
    ----------
    frame
        obs in submission form.
    schema_version
        Schema version whose ontology releases give the labels.

    Returns
    -------
    pandas.DataFrame
        A copy with ``cell_type``, ``assay``, ``disease``, ``sex``, ``tissue``,
        ``self_reported_ethnicity``, ``development_stage`` (categoricals) and
        ``observation_joinid`` (strings) appended.
    """
    out = frame.copy()
    for label_column, id_column in LABEL_COLUMNS.items():
        ids = out[id_column]
        categories = [str(c) for c in ids.cat.categories]
        labels = [term_label(c, schema_version) for c in categories]
        if len(set(labels)) == len(labels):
            out[label_column] = pd.Categorical.from_codes(
                cast("Sequence[int]", ids.cat.codes.to_numpy()), categories=pd.Index(labels)
            )
        else:  # two ids with one label: let pandas merge the categories
            out[label_column] = pd.Categorical(np.asarray(labels, dtype=object)[ids.cat.codes])
    out["observation_joinid"] = observation_joinids(out.index)
    return out
