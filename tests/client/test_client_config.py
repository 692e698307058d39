"""The client's one configuration object: arguments > configure() > CELLCENSUS_ env > defaults."""

from __future__ import annotations

import dataclasses

import pytest

import cellcensus
from cellcensus.errors import ConfigError
from cellcensus.settings import (
    DEFAULT_CACHE_TTL,
    DEFAULT_OBS_CACHE_BYTES,
    ClientConfig,
    Settings,
    client_config,
    configure,
    reset_configuration,
)


def test_defaults_then_environment_then_configure(monkeypatch: pytest.MonkeyPatch) -> None:
    assert client_config() == ClientConfig(release_root=None, cache_ttl=DEFAULT_CACHE_TTL)
    monkeypatch.setenv("CELLCENSUS_RELEASE_ROOT", "/env/root")
    monkeypatch.setenv("CELLCENSUS_CACHE_TTL", "5")
    assert client_config() == ClientConfig(release_root="/env/root", cache_ttl=5.0)
    storage = Settings(endpoint_url="http://127.0.0.1:8333")
    now = cellcensus.configure(release_root="/configured", settings=storage, cache_ttl=0)
    assert now == ClientConfig(release_root="/configured", settings=storage, cache_ttl=0.0)
    assert client_config() == now
    assert configure(release_root="").release_root == "/env/root"  # unset: the env again
    assert client_config().cache_ttl == 0.0  # the other fields stay configured
    reset_configuration()
    assert client_config() == ClientConfig(release_root="/env/root", cache_ttl=5.0)


@pytest.mark.parametrize("raw", ["soon", "-1", "nan"])
def test_bad_cache_ttl_from_the_environment(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("CELLCENSUS_CACHE_TTL", raw)
    with pytest.raises(ConfigError, match="CELLCENSUS_CACHE_TTL"):
        client_config()


def test_bad_values_are_refused_and_change_nothing() -> None:
    with pytest.raises(ConfigError, match="cache_ttl must be >= 0"):
        configure(cache_ttl=-3)
    assert client_config() == ClientConfig()
    with pytest.raises(ConfigError):
        ClientConfig(cache_ttl=-1)


def test_the_configuration_is_immutable() -> None:
    config = configure(release_root="/somewhere")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.release_root = "/elsewhere"  # type: ignore[misc]


def test_obs_cache_bytes_from_defaults_environment_and_configure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert client_config().obs_cache_bytes == DEFAULT_OBS_CACHE_BYTES
    monkeypatch.setenv("CELLCENSUS_OBS_CACHE_BYTES", "1000")
    assert client_config().obs_cache_bytes == 1000
    assert configure(obs_cache_bytes=0).obs_cache_bytes == 0
    assert client_config().obs_cache_bytes == 0  # configure wins over the environment
    reset_configuration()
    assert client_config().obs_cache_bytes == 1000


@pytest.mark.parametrize("raw", ["lots", "-1", "1.5"])
def test_bad_obs_cache_bytes_are_refused(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("CELLCENSUS_OBS_CACHE_BYTES", raw)
    with pytest.raises(ConfigError, match="CELLCENSUS_OBS_CACHE_BYTES"):
        client_config()
    monkeypatch.delenv("CELLCENSUS_OBS_CACHE_BYTES")
    with pytest.raises(ConfigError, match="obs_cache_bytes"):
        configure(obs_cache_bytes=-1)
    with pytest.raises(ConfigError, match="obs_cache_bytes"):
        ClientConfig(obs_cache_bytes=True)
    assert client_config() == ClientConfig()
