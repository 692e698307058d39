"""Settings: resolution order, TileDB/boto3 translation, secrets never shown."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from cellcensus.errors import ConfigError
from cellcensus.settings import DEFAULT_REGION, Settings

if TYPE_CHECKING:
    from pathlib import Path

SECRET = "s3cr3t-value-never-shown"  # noqa: S105


@pytest.mark.parametrize(
    ("kwargs", "env", "field", "expected"),
    [
        # endpoint: explicit > CELLCENSUS > AWS_ENDPOINT_URL_S3 > AWS_ENDPOINT_URL > None
        (
            {"endpoint_url": "http://a:1"},
            {"CELLCENSUS_S3_ENDPOINT_URL": "http://b:2", "AWS_ENDPOINT_URL_S3": "http://c:3"},
            "endpoint_url",
            "http://a:1",
        ),
        (
            {},
            {"CELLCENSUS_S3_ENDPOINT_URL": "http://b:2", "AWS_ENDPOINT_URL_S3": "http://c:3"},
            "endpoint_url",
            "http://b:2",
        ),
        (
            {},
            {"AWS_ENDPOINT_URL_S3": "http://c:3", "AWS_ENDPOINT_URL": "http://d:4"},
            "endpoint_url",
            "http://c:3",
        ),
        ({}, {"AWS_ENDPOINT_URL": "http://d:4"}, "endpoint_url", "http://d:4"),
        ({}, {}, "endpoint_url", None),
        # region: explicit > CELLCENSUS > AWS_REGION > AWS_DEFAULT_REGION > default
        ({"region": "r1"}, {"CELLCENSUS_S3_REGION": "r2", "AWS_REGION": "r3"}, "region", "r1"),
        ({}, {"CELLCENSUS_S3_REGION": "r2", "AWS_REGION": "r3"}, "region", "r2"),
        ({}, {"AWS_REGION": "r3", "AWS_DEFAULT_REGION": "r4"}, "region", "r3"),
        ({}, {"AWS_DEFAULT_REGION": "r4"}, "region", "r4"),
        ({}, {}, "region", DEFAULT_REGION),
        # path style: explicit > env > on iff an endpoint is set
        ({"path_style": False, "endpoint_url": "http://a:1"}, {}, "path_style", False),
        (
            {},
            {"CELLCENSUS_S3_PATH_STYLE": "false", "AWS_ENDPOINT_URL": "http://a:1"},
            "path_style",
            False,
        ),
        ({}, {"AWS_ENDPOINT_URL": "http://a:1"}, "path_style", True),
        ({}, {}, "path_style", False),
        # anonymous
        ({}, {"CELLCENSUS_S3_NO_SIGN_REQUEST": "yes"}, "anonymous", True),
        ({"anonymous": False}, {"CELLCENSUS_S3_NO_SIGN_REQUEST": "1"}, "anonymous", False),
        # keys: explicit > CELLCENSUS pair > AWS pair
        (
            {"access_key_id": "K1", "secret_access_key": "S1"},
            {"CELLCENSUS_S3_ACCESS_KEY_ID": "K2", "CELLCENSUS_S3_SECRET_ACCESS_KEY": "S2"},
            "access_key_id",
            "K1",
        ),
        (
            {},
            {
                "CELLCENSUS_S3_ACCESS_KEY_ID": "K2",
                "CELLCENSUS_S3_SECRET_ACCESS_KEY": "S2",
                "AWS_ACCESS_KEY_ID": "K3",
                "AWS_SECRET_ACCESS_KEY": "S3",
            },
            "access_key_id",
            "K2",
        ),
        (
            {},
            {"AWS_ACCESS_KEY_ID": "K3", "AWS_SECRET_ACCESS_KEY": "S3", "AWS_SESSION_TOKEN": "T3"},
            "session_token",
            "T3",
        ),
    ],
)
def test_resolution_order(
    kwargs: dict[str, Any], env: dict[str, str], field: str, expected: object
) -> None:
    s = Settings.resolve(**kwargs, env=env)
    assert getattr(s, field) == expected


def test_anonymous_drops_credentials() -> None:
    s = Settings.resolve(
        anonymous=True, env={"AWS_ACCESS_KEY_ID": "K", "AWS_SECRET_ACCESS_KEY": SECRET}
    )
    assert s.access_key_id is None
    assert s.secret_access_key is None
    cfg = s.tiledb_config()
    assert cfg["vfs.s3.no_sign_request"] == "true"
    assert not any("aws_" in k for k in cfg)


def test_tiledb_config_translates_everything() -> None:
    s = Settings.resolve(
        env={
            "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000/",
            "AWS_ACCESS_KEY_ID": "KEY",
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_SESSION_TOKEN": "TOKEN",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }
    )
    assert s.tiledb_config() == {
        "vfs.s3.region": "eu-west-1",
        "vfs.s3.scheme": "http",
        "vfs.s3.use_virtual_addressing": "false",
        "vfs.s3.no_sign_request": "false",
        "vfs.s3.endpoint_override": "http://127.0.0.1:9000",
        "vfs.s3.aws_access_key_id": "KEY",
        "vfs.s3.aws_secret_access_key": SECRET,
        "vfs.s3.aws_session_token": "TOKEN",
    }


def test_aws_defaults_are_https_and_virtual_hosted() -> None:
    cfg = Settings.resolve(env={}).tiledb_config()
    assert cfg["vfs.s3.scheme"] == "https"
    assert cfg["vfs.s3.use_virtual_addressing"] == "true"
    assert "vfs.s3.endpoint_override" not in cfg
    # signed by default: the official client's own default is unsigned, so it must be explicit
    assert cfg["vfs.s3.no_sign_request"] == "false"


def test_profile_credentials_and_region_come_from_the_aws_files(tmp_path: Path) -> None:
    creds = tmp_path / "credentials"
    creds.write_text(
        f"[census]\naws_access_key_id = PROFILEKEY\naws_secret_access_key = {SECRET}\n"
    )
    config = tmp_path / "config"
    config.write_text("[profile census]\nregion = ap-south-1\n")
    env = {
        "AWS_PROFILE": "census",
        "AWS_SHARED_CREDENTIALS_FILE": str(creds),
        "AWS_CONFIG_FILE": str(config),
    }
    with pytest.MonkeyPatch.context() as mp:
        # boto3 reads the file locations from the process environment
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
        mp.setenv("AWS_CONFIG_FILE", str(config))
        s = Settings.resolve(env=env)
        unknown = pytest.raises(ConfigError, match="profile 'nope' was not found")
        with unknown:
            Settings.resolve(profile="nope", env={})
        # the keys are not copied into the settings: they are read, refreshed when they are
        # temporary, through the profile's boto3 session whenever they are needed
        assert s.access_key_id is None
        assert s.secret_access_key is None
        assert s.frozen_credentials() == ("PROFILEKEY", SECRET, None)
        cfg = s.tiledb_config()
        assert cfg["vfs.s3.aws_access_key_id"] == "PROFILEKEY"
        assert cfg["vfs.s3.aws_secret_access_key"] == SECRET
        assert SECRET not in repr(s)
    assert s.region == "ap-south-1"
    assert s.profile == "census"


@pytest.mark.parametrize(
    ("kwargs", "env", "match"),
    [
        ({"endpoint_url": "127.0.0.1:9000"}, {}, "not an http"),
        ({"endpoint_url": "ftp://host"}, {}, "not an http"),
        ({"endpoint_url": "http://user:pw@host"}, {}, "must not contain credentials"),
        ({}, {"AWS_ACCESS_KEY_ID": "only-the-id"}, "without its secret"),
        ({}, {"CELLCENSUS_S3_NO_SIGN_REQUEST": "maybe"}, "is not a boolean"),
        ({"region": ""}, {}, "region must not be empty"),
    ],
)
def test_bad_settings_are_clear_errors(
    kwargs: dict[str, Any], env: dict[str, str], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        Settings.resolve(**kwargs, env=env)


def test_repr_and_describe_never_show_secrets() -> None:
    s = Settings(
        endpoint_url="http://127.0.0.1:1",
        access_key_id="AKIAEXAMPLEKEYID",
        secret_access_key=SECRET,
        session_token="TOKEN-SECRET",  # noqa: S106
    )
    for text in (repr(s), str(s), f"{s}", str(s.describe())):
        assert SECRET not in text
        assert "TOKEN-SECRET" not in text
        assert "AKIAEXAMPLEKEYID" not in text
    assert "static keys" in repr(s)


def test_boto3_client_uses_the_settings() -> None:
    s = Settings(endpoint_url="http://127.0.0.1:1234", region="eu-north-1", path_style=True)
    c = s.boto3_client()
    assert c.meta.endpoint_url == "http://127.0.0.1:1234"
    assert c.meta.region_name == "eu-north-1"
    s3_config = c.meta.config.s3  # type: ignore[attr-defined] # botocore's Config is untyped
    assert s3_config == {"addressing_style": "path"}
