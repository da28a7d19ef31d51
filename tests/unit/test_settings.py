"""Settings are validated at start-up and say which setting is wrong."""

from __future__ import annotations

import pytest

from services.settings import SettingsError, load_settings


def test_defaults_start_a_local_kafka_and_use_sqlite_in_the_data_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("KOOPKRACHT_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.delenv("KOOPKRACHT_DATABASE_URL", raising=False)
    monkeypatch.setenv("KOOPKRACHT_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.local_kafka
    assert settings.sqlalchemy_url == f"sqlite:///{tmp_path / 'koopkracht.db'}"


def test_a_bootstrap_points_at_an_existing_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOOPKRACHT_KAFKA_BOOTSTRAP", "127.0.0.1:9092,127.0.0.1:9093")
    settings = load_settings()
    assert not settings.local_kafka
    assert settings.kafka_bootstrap == "127.0.0.1:9092,127.0.0.1:9093"


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("KOOPKRACHT_KAFKA_BOOTSTRAP", "localhost", "not host:port"),
        ("KOOPKRACHT_API_PORT", "eighty", "valid integer"),
        ("KOOPKRACHT_KAFKA_NODES", "2", "1 or 3"),
        ("KOOPKRACHT_LOG_FORMAT", "xml", "'auto', 'json' or 'console'"),
        ("KOOPKRACHT_TICK_INTERVAL_S", "0", "greater than 0"),
    ],
)
def test_an_invalid_setting_stops_start_up_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, words: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value.code)
    assert variable in message
    assert words in message


def test_the_admin_token_never_shows_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOOPKRACHT_ADMIN_TOKEN", "very-secret-admin-token-of-the-hub-0123456789")
    settings = load_settings()
    assert "very-secret-admin-token-of-the-hub-0123456789" not in repr(settings)
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == "very-secret-admin-token-of-the-hub-0123456789"


def test_single_sign_on_is_on_with_an_issuer_and_a_client_id(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no OIDC settings, then personal tokens sign in
    assert not load_settings().oidc_enabled
    # When the operator names the provider and the client it registered
    monkeypatch.setenv("KOOPKRACHT_OIDC_ISSUER", "https://connect.surfconext.nl/")
    monkeypatch.setenv("KOOPKRACHT_OIDC_CLIENT_ID", "koopkracht.example.org")
    monkeypatch.setenv("KOOPKRACHT_OIDC_CLIENT_SECRET", "the-client-secret-from-the-federation")
    settings = load_settings()
    # Then people sign in through it, with the default scopes, and the secret shows nowhere
    assert settings.oidc_enabled
    assert settings.oidc_issuer == "https://connect.surfconext.nl"
    assert settings.oidc_scopes == "openid email profile"
    assert "the-client-secret-from-the-federation" not in repr(settings)


@pytest.mark.parametrize(
    ("environment", "variable", "words"),
    [
        ({"KOOPKRACHT_OIDC_ISSUER": "https://connect.surfconext.nl"}, "KOOPKRACHT_OIDC_CLIENT_ID", "set both"),
        ({"KOOPKRACHT_OIDC_CLIENT_ID": "koopkracht"}, "KOOPKRACHT_OIDC_CLIENT_ID", "set both"),
        (
            {"KOOPKRACHT_OIDC_ISSUER": "http://idp.example.org", "KOOPKRACHT_OIDC_CLIENT_ID": "k"},
            "KOOPKRACHT_OIDC_ISSUER",
            "https",
        ),
        (
            {
                "KOOPKRACHT_OIDC_ISSUER": "https://idp.example.org",
                "KOOPKRACHT_OIDC_CLIENT_ID": "k",
                "KOOPKRACHT_OIDC_SCOPES": "email",
            },
            "KOOPKRACHT_OIDC_SCOPES",
            "openid",
        ),
    ],
)
def test_half_a_single_sign_on_configuration_stops_start_up(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], variable: str, words: str
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value.code)
    assert variable in message
    assert words in message
