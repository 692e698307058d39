"""Options shared by several commands: S3 access (endpoint, region, signing, addressing)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from cellcensus.settings import Settings

EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        help="S3 endpoint of a non-AWS server, e.g. http://127.0.0.1:8333 "
        "(default: CELLCENSUS_S3_ENDPOINT_URL, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL).",
        show_default=False,
    ),
]
RegionOpt = Annotated[
    str | None,
    typer.Option(
        "--region",
        help="S3 region (default: CELLCENSUS_S3_REGION, AWS_REGION, us-east-1).",
        show_default=False,
    ),
]
NoSignOpt = Annotated[
    bool,
    typer.Option("--no-sign-request", help="Unsigned (anonymous) S3 requests, for public buckets."),
]
PathStyleOpt = Annotated[
    bool,
    typer.Option(
        "--path-style",
        help="Path-style S3 addressing (default: on when an endpoint URL is set).",
    ),
]


def s3_settings(
    endpoint_url: str | None,
    region: str | None,
    no_sign_request: bool,
    path_style: bool,
) -> Settings:
    """Storage settings: these options first, then ``CELLCENSUS_*`` / AWS environment, defaults."""
    from cellcensus.settings import Settings

    return Settings.resolve(
        endpoint_url=endpoint_url,
        region=region,
        anonymous=True if no_sign_request else None,
        path_style=True if path_style else None,
    )
