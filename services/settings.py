"""Settings of every Koopkracht process, from ``KOOPKRACHT_*`` environment variables.

Validated at start-up: a wrong value stops the program with a message that names the setting.
Secrets have no defaults and never appear in logs or ``repr``.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.connection import KafkaConnection, SaslMechanism, SecurityProtocol, uses_sasl, uses_tls
from streams.core.decider import Limits

MIN_TOKEN_LENGTH = 32
"""The admin and metrics tokens are chosen by people: this many characters at least."""
DEFAULT_METRICS_PORTS = {"worker": 9101, "projector": 9102, "webhooks": 9103, "scheduler": 9104}
"""Each process's metrics port when ``KOOPKRACHT_METRICS_PORT`` is unset (the API's are on its own port)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KOOPKRACHT_", extra="ignore", frozen=True)

    data_dir: Path = Field(default=Path(".koopkracht"), description="Local Kafka, SQLite and logs live here.")
    kafka_bootstrap: str | None = Field(
        default=None,
        description="host:port[,host:port] of an existing Kafka; when unset, a local Kafka is started.",
    )
    # -- a secured Kafka: TLS and SASL (streams/connection.py; docs/deployment.md) ------------------
    kafka_security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT",
        description="How clients talk to the brokers: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL (TLS and SASL).",
    )
    kafka_sasl_mechanism: SaslMechanism | None = Field(
        default=None,
        validate_default=True,
        description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; needed with SASL_SSL and SASL_PLAINTEXT.",
    )
    kafka_sasl_username: str | None = Field(
        default=None, validate_default=True, description="This process's SASL user (its Kafka principal)."
    )
    kafka_sasl_password: SecretStr | None = Field(
        default=None, validate_default=True, description="That user's password (a secret: no default, never logged)."
    )
    kafka_ca_file: Path | None = Field(
        default=None,
        description="PEM file of the CA certificates that signed the brokers' certificates (SSL, SASL_SSL); "
        "unset: the system's trusted CAs.",
    )
    kafka_base_port: int = Field(default=19092, ge=1024, le=65000, description="First port of the local Kafka.")
    kafka_nodes: int = Field(default=1, description="Nodes of the local Kafka: 1 or 3.")
    replication_factor: int | None = Field(
        default=None,
        ge=1,
        le=5,
        description="Replication of the worker's internal topics; 3 for a 3-node local Kafka, else 1.",
    )
    topic_prefix: str = Field(default="koopkracht", pattern=r"^[A-Za-z0-9._-]{1,100}$")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; SQLite in the data folder when unset.")
    admin_token: SecretStr | None = Field(default=None, description="Bearer token of the hub's admin.")
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    fault_sigkill_after_commands: int | None = Field(
        default=None, ge=1, description="Tests only: the worker kills itself mid-batch after this many commands."
    )
    fault_sigstop_after_commands: int | None = Field(
        default=None, ge=1, description="Tests only: the worker stops itself (SIGSTOP) mid-batch, once."
    )
    command_timeout_s: float = Field(default=10.0, gt=0, le=300)
    state_interval_ms: int = Field(
        default=1000,
        ge=0,
        le=60_000,
        description="A negotiation's state document is published at most this often (0: after every batch).",
    )
    ocid_prefix: str = Field(
        default="ocds-koopkracht",
        pattern=r"^[A-Za-z0-9-]{1,50}$",
        description="The OCDS ocid prefix of the OCDS export; use the one registered for your cooperative.",
    )
    sse_heartbeat_s: float = Field(
        default=15.0, gt=0, le=300, description="A comment line this often keeps streams open."
    )
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=120, description="How long a receiver may take to answer.")
    webhook_retry_max_s: float = Field(
        default=600.0, gt=0, le=86_400, description="Longest wait between two attempts of one delivery."
    )
    webhook_give_up_after_s: float = Field(
        default=86_400.0, gt=0, description="A subscription failing without a success this long is disabled."
    )
    # -- webhook destinations (SSRF): where deliveries may go; services/subscriptions/destinations.py
    webhook_allow: str = Field(
        default="",
        description=(
            "Comma-separated networks (10.1.2.0/24, 127.0.0.1, fd00::/8) and host names that webhooks may "
            "reach although they are not public; empty: public addresses only."
        ),
    )
    webhook_allow_http: bool = Field(default=False, description="Allow http webhook URLs; https only when false.")

    restart_backoff_max_s: float = Field(
        default=30.0, ge=0.5, le=3600, description="`up` restarts a crashed process after at most this long."
    )
    restart_max_crashes: int = Field(
        default=5, ge=1, le=1000, description="`up` stops when a process crashes more often within restart_window_s."
    )
    restart_window_s: float = Field(
        default=120.0, gt=0, le=86_400, description="The window, in seconds, in which restart_max_crashes count."
    )
    # -- the scheduler: time, as a command (SPEC section 9; services/scheduler.py) ------------------
    tick_interval_s: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="The scheduler sends a Tick to each negotiation with a commitment past its due date this often.",
    )
    # -- browser security and retention (hostile input and abuse) --------------------------------
    public_url: str | None = Field(
        default=None,
        description=(
            "The address people use, e.g. https://hub.example.org. When it is https, the dashboard's cookies are "
            "Secure (also behind a proxy that ends TLS and forwards plain http) and Strict-Transport-Security is sent."
        ),
    )
    purge_interval_s: float = Field(
        default=600.0, gt=0, le=86_400, description="The webhook dispatcher purges what is past retention this often."
    )
    delivery_retention_s: float = Field(
        default=30 * 86_400.0,
        ge=60,
        description="Delivered webhook deliveries (and their attempts) are kept this long after delivery; the pending "
        "ones of a subscription disabled this long are dropped.",
    )
    idempotency_retention_s: float = Field(
        default=86_400.0,
        ge=3600,
        description="An Idempotency-Key's record (its stored answer) is kept this long after the request was sent.",
    )

    # -- tenant bounds: how large one party's share of the hub may grow (409 beyond; 429 for streams)
    max_members_per_negotiation: int = Field(
        default=500, ge=1, le=100_000, description="Members one negotiation may have."
    )
    max_rounds_per_negotiation: int = Field(
        default=200, ge=1, le=100_000, description="Vendor rounds one negotiation may have."
    )
    max_clarifications_per_negotiation: int = Field(
        default=2000, ge=1, le=1_000_000, description="Clarification requests one negotiation may have."
    )
    max_open_negotiations_per_coordinator: int = Field(
        default=200,
        ge=1,
        le=1_000_000,
        description="Negotiations a coordinator may have open (not abandoned, agreed, implementing nor fulfilled).",
    )
    max_subscriptions_per_organisation: int = Field(
        default=50, ge=1, le=100_000, description="Webhook subscriptions one organisation may have."
    )
    max_live_streams_per_caller: int = Field(
        default=8, ge=1, le=10_000, description="Live streams one organisation may hold open, per API process."
    )

    # -- abuse limits: rate limits, the key cache, the metrics token (docs/security.md) --------------
    rate_limit_per_key: str = Field(
        default="600/minute",
        description=(
            "Requests one organisation (by its API key or dashboard session) or the admin may make, in the notation "
            "of the limits library: '600/minute', or several joined by ';' ('600/minute;100/second'); counted in a "
            "moving window in each API process."
        ),
    )
    rate_limit_failed_auth: str = Field(
        default="30/minute",
        description=(
            "Failed authentications (a wrong API key, admin or metrics token, or dashboard sign-in) one client "
            "address may make; past it, that address's requests with a credential are refused (429) until the "
            "window lets one in again. Counted in each API process."
        ),
    )
    key_cache_ttl_s: float = Field(
        default=10.0,
        ge=0,
        le=300,
        description="An API process trusts an API key it has read for at most this long: a revoked or rotated key "
        "stops working in every API process within it (0: read the key on every request).",
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="Bearer token that reads /metrics (at least 32 characters); unset: nobody can."
    )

    # -- observability: each process's metrics port, tracing (docs/deployment.md#metrics-and-health) --
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description=(
            "Port of a process's /metrics, /healthz and /readyz (not the API's: it serves them on its own port). "
            "Unset: the worker 9101, the projector 9102, the webhook dispatcher 9103, the scheduler 9104; 0: none."
        ),
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Where a process's metrics port listens: 0.0.0.0 (or ::) in a container, so probes and "
        "Prometheus reach it.",
    )
    otel_enabled: bool = Field(
        default=False,
        description=(
            "Trace with OpenTelemetry: spans from the HTTP request through the command, the worker's decision and "
            "the projection, exported by OTLP over HTTP to where the standard OTEL_EXPORTER_OTLP_ENDPOINT says."
        ),
    )

    # -- single sign-on: OpenID Connect for the dashboard (docs/dashboard.md#single-sign-on) ---------
    oidc_issuer: str | None = Field(
        default=None,
        description=(
            "The OpenID provider's issuer, e.g. https://connect.surfconext.nl; its "
            "/.well-known/openid-configuration is read. With oidc_client_id set too, people sign in to the "
            "dashboard through it (and no longer with personal tokens)."
        ),
    )
    oidc_client_id: str | None = Field(
        default=None,
        validate_default=True,
        description="The client id the provider registered for this hub.",
    )
    oidc_client_secret: SecretStr | None = Field(
        default=None, description="The client's secret; unset for a public client (PKCE alone)."
    )
    oidc_label: str = Field(
        default="single sign-on",
        max_length=60,
        description="The federation's name on the sign-in button: 'Sign in with <label>' (e.g. SURFconext).",
    )
    oidc_scopes: str = Field(
        default="openid email profile",
        pattern=r"^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$",
        description="The scopes asked for, separated by spaces; openid among them.",
    )
    oidc_trust_email: bool = Field(
        default=False,
        description=(
            "Bind an invitation to an identity whose e-mail address the provider sends without an email_verified "
            "claim (a federation whose institutions vouch for their addresses, such as SURFconext, which does not "
            "send the claim). An email_verified of false is never trusted."
        ),
    )

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer_shape(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"{value!r} is not an issuer address like https://connect.surfconext.nl")
        if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
            raise ValueError(f"{value!r}: an issuer is reached over https (plain http only on this machine)")
        return value.rstrip("/")

    @field_validator("oidc_client_id")
    @classmethod
    def _client_with_issuer(cls, value: str | None, info: ValidationInfo) -> str | None:
        value = value or None
        if "oidc_issuer" not in info.data:  # the issuer is wrong: its own message says so
            return value
        if (value is None) != (info.data["oidc_issuer"] is None):
            raise ValueError("set both KOOPKRACHT_OIDC_ISSUER and KOOPKRACHT_OIDC_CLIENT_ID, or neither")
        return value

    @field_validator("oidc_scopes")
    @classmethod
    def _openid_scope(cls, value: str) -> str:
        if "openid" not in value.split(" "):
            raise ValueError("must include openid")
        return value

    def limits(self) -> Limits:
        """The tenant bounds of one negotiation, as the worker decides with them (and the board asks them)."""
        return Limits(
            members=self.max_members_per_negotiation,
            rounds=self.max_rounds_per_negotiation,
            clarifications=self.max_clarifications_per_negotiation,
        )

    @property
    def oidc_enabled(self) -> bool:
        """Whether people sign in with single sign-on (else with personal tokens)."""
        return self.oidc_issuer is not None and self.oidc_client_id is not None

    @field_validator("rate_limit_per_key", "rate_limit_failed_auth")
    @classmethod
    def _rate_limits(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate limit such as '600/minute' or '600/minute;100/second'") from None
        return value

    @field_validator("admin_token", "metrics_token")
    @classmethod
    def _strong_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"must be at least {MIN_TOKEN_LENGTH} characters (make one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return value

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_shape(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"{server!r} is not host:port")
        return value

    @field_validator("kafka_security_protocol")
    @classmethod
    def _secured_kafka_is_not_local(cls, value: str, info: ValidationInfo) -> str:
        local = "kafka_bootstrap" in info.data and info.data["kafka_bootstrap"] is None
        if value != "PLAINTEXT" and local:
            raise ValueError(
                f"{value} needs KOOPKRACHT_KAFKA_BOOTSTRAP: the local Kafka listens in plaintext, "
                "so name the secured cluster's listener"
            )
        return value

    @field_validator(
        "kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password", "kafka_ca_file", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password")
    @classmethod
    def _sasl_with_sasl_protocol(cls, value: object, info: ValidationInfo) -> object:
        protocol = info.data.get("kafka_security_protocol")
        if protocol is None:  # the protocol is wrong: its own message says so
            return value
        if uses_sasl(protocol) and value is None:
            what = (info.field_name or "").removeprefix("kafka_sasl_")
            raise ValueError(f"KOOPKRACHT_KAFKA_SECURITY_PROTOCOL={protocol} needs a SASL {what}")
        if not uses_sasl(protocol) and value is not None:
            raise ValueError(
                f"is used only with KOOPKRACHT_KAFKA_SECURITY_PROTOCOL=SASL_SSL or SASL_PLAINTEXT, not {protocol}"
            )
        return value

    @field_validator("kafka_ca_file")
    @classmethod
    def _readable_ca_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        protocol = info.data.get("kafka_security_protocol")
        if protocol is not None and not uses_tls(protocol):
            raise ValueError(f"is used only with KOOPKRACHT_KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL, not {protocol}")
        if not value.is_file():
            raise ValueError(f"{str(value)!r} is not a file")
        try:
            ssl.create_default_context(cafile=str(value))
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"{str(value)!r} cannot be read as PEM CA certificates ({exc})") from None
        return value.resolve()

    def kafka_connection(self, bootstrap: str | None = None) -> KafkaConnection:
        """How this process's Kafka clients connect: to ``bootstrap`` (the local Kafka's address)
        or else to KOOPKRACHT_KAFKA_BOOTSTRAP, with the security settings."""
        address = bootstrap or self.kafka_bootstrap
        if not address:
            raise ValueError("no Kafka to connect to: KOOPKRACHT_KAFKA_BOOTSTRAP is unset and no local Kafka runs")
        return KafkaConnection(
            bootstrap=address,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=self.kafka_sasl_password,
            ca_file=self.kafka_ca_file,
        )

    @field_validator("webhook_allow")
    @classmethod
    def _allow_list(cls, value: str) -> str:
        from services.subscriptions.destinations import parse_allow_list

        parse_allow_list(value)  # ValueError names the entry at fault
        return ",".join(e.strip() for e in value.split(",") if e.strip())

    @field_validator("public_url")
    @classmethod
    def _public_url_shape(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"{value!r} is not an http(s) address like https://hub.example.org")
        return value.rstrip("/")

    @property
    def public_origin(self) -> str | None:
        """``scheme://host[:port]`` of ``public_url``: where the dashboard's forms come from."""
        if self.public_url is None:
            return None
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def public_https(self) -> bool:
        return self.public_url is not None and self.public_url.startswith("https://")

    def as_environment(self) -> dict[str, str]:
        """These settings as ``KOOPKRACHT_*`` variables, for child processes (secrets included)."""
        env = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, Path):
                value = value.resolve()
            env[f"KOOPKRACHT_{name.upper()}"] = str(value)
        return env

    @field_validator("kafka_nodes")
    @classmethod
    def _one_or_three(cls, value: int) -> int:
        if value not in (1, 3):
            raise ValueError("must be 1 or 3")
        return value

    @property
    def internal_replication(self) -> int:
        if self.replication_factor is not None:
            return self.replication_factor
        return 3 if self.local_kafka and self.kafka_nodes == 3 else 1

    @property
    def local_kafka(self) -> bool:
        return self.kafka_bootstrap is None

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'koopkracht.db').resolve()}"


class SettingsError(SystemExit):
    """Invalid settings: the message names each setting and what is wrong with it."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = ["Invalid settings:"]
        for error in exc.errors():
            name = "KOOPKRACHT_" + "_".join(str(p) for p in error["loc"]).upper()
            lines.append(f"  {name}: {error['msg']}")
        raise SettingsError("\n".join(lines)) from None
