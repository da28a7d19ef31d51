"""Settings are validated at start-up and say which setting is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.settings import SettingsError, load_settings
from streams.connection import KafkaConnection
from tests.certificates import Authority


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


# -- a secured Kafka: TLS and SASL -------------------------------------------------------------------

SECURED = {
    "KOOPKRACHT_KAFKA_BOOTSTRAP": "kafka-0.kafka:9093,kafka-1.kafka:9093",
    "KOOPKRACHT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KOOPKRACHT_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KOOPKRACHT_KAFKA_SASL_USERNAME": "koopkracht-worker",
    "KOOPKRACHT_KAFKA_SASL_PASSWORD": "the-worker-password-from-the-secret",
}


def test_sasl_ssl_settings_give_every_kafka_client_the_credentials_and_the_ca(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given the settings of a Kafka with TLS and SCRAM, and the CA that signed its brokers
    authority = Authority.create(tmp_path)
    for name, value in {**SECURED, "KOOPKRACHT_KAFKA_CA_FILE": str(authority.ca_file)}.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    # When the services build their Kafka connection
    connection = settings.kafka_connection()
    options = connection.options()
    # Then every client gets the protocol, the mechanism and the user's credentials
    assert options["bootstrap_servers"] == "kafka-0.kafka:9093,kafka-1.kafka:9093"
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "koopkracht-worker"
    assert options["sasl_plain_password"] == "the-worker-password-from-the-secret"
    # And a TLS context that trusts that CA and checks the brokers' names
    context = options["ssl_context"]
    assert context.check_hostname
    # (OpenSSL writes the serial number in hex padded to whole bytes: compared as a number)
    assert [int(c["serialNumber"], 16) for c in context.get_ca_certs()] == [authority.certificate.serial_number]
    # And the password shows neither in the settings nor in the connection
    assert "the-worker-password-from-the-secret" not in repr(settings)
    assert "the-worker-password-from-the-secret" not in repr(connection)
    # And child processes get it all (the stack passes settings on as variables)
    assert settings.as_environment()["KOOPKRACHT_KAFKA_SASL_PASSWORD"] == "the-worker-password-from-the-secret"


def test_a_plain_bootstrap_is_a_plaintext_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOOPKRACHT_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    options = load_settings().kafka_connection().options()
    assert options == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}
    assert KafkaConnection.of("127.0.0.1:9092").options() == options


@pytest.mark.parametrize(
    ("environment", "variable", "words"),
    [
        (
            {**SECURED, "KOOPKRACHT_KAFKA_SASL_MECHANISM": ""},
            "KOOPKRACHT_KAFKA_SASL_MECHANISM",
            "SASL_SSL needs a SASL mechanism",
        ),
        ({**SECURED, "KOOPKRACHT_KAFKA_SASL_MECHANISM": "GSSAPI"}, "KOOPKRACHT_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
        (
            {**SECURED, "KOOPKRACHT_KAFKA_SASL_USERNAME": ""},
            "KOOPKRACHT_KAFKA_SASL_USERNAME",
            "needs a SASL username",
        ),
        (
            {k: v for k, v in SECURED.items() if k != "KOOPKRACHT_KAFKA_SASL_PASSWORD"},
            "KOOPKRACHT_KAFKA_SASL_PASSWORD",
            "needs a SASL password",
        ),
        ({**SECURED, "KOOPKRACHT_KAFKA_SECURITY_PROTOCOL": "TLS"}, "KOOPKRACHT_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
        (
            {**SECURED, "KOOPKRACHT_KAFKA_CA_FILE": "/nowhere/ca.pem"},
            "KOOPKRACHT_KAFKA_CA_FILE",
            "'/nowhere/ca.pem' is not a file",
        ),
        (
            {"KOOPKRACHT_KAFKA_BOOTSTRAP": "kafka:9092", "KOOPKRACHT_KAFKA_SASL_USERNAME": "koopkracht-api"},
            "KOOPKRACHT_KAFKA_SASL_USERNAME",
            "used only with KOOPKRACHT_KAFKA_SECURITY_PROTOCOL=SASL_SSL",
        ),
        (
            {"KOOPKRACHT_KAFKA_SECURITY_PROTOCOL": "SSL"},
            "KOOPKRACHT_KAFKA_SECURITY_PROTOCOL",
            "SSL needs KOOPKRACHT_KAFKA_BOOTSTRAP",
        ),
    ],
)
def test_half_a_kafka_security_configuration_stops_start_up(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], variable: str, words: str
) -> None:
    monkeypatch.delenv("KOOPKRACHT_KAFKA_BOOTSTRAP", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value.code)
    assert variable in message
    assert words in message
    assert "the-worker-password-from-the-secret" not in message


def test_a_ca_file_that_holds_no_certificate_stops_start_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given a CA file that is the server's private key by mistake
    server = Authority.create(tmp_path).issue("kafka", "kafka")
    for name, value in {**SECURED, "KOOPKRACHT_KAFKA_CA_FILE": str(server.key)}.items():
        monkeypatch.setenv(name, value)
    # Then the process does not start, and says so
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "KOOPKRACHT_KAFKA_CA_FILE" in str(raised.value.code)
    assert "cannot be read as PEM CA certificates" in str(raised.value.code)
