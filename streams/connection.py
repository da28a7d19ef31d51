"""How the hub's Kafka clients reach the brokers: the address and, for a secured cluster, TLS and SASL.

One frozen value, built by the services layer from the settings (``Settings.kafka_connection``)
and handed to every aiokafka client the hub makes (the worker, the command client, the projector,
the audit, the API's admin client, ``topics ensure``). ``options()`` gives the keyword arguments
that every aiokafka client takes for where and how to connect; ``producer()``, ``consumer()`` and
``admin()`` build a client with them. A bare ``host:port`` string stands for a plaintext cluster
(``KafkaConnection.of``): the local Kafka and most tests use one.

Without TLS nothing is encrypted and, without SASL, the broker cannot tell one client from
another (every client is ``User:ANONYMOUS``); ``docs/deployment.md`` says what an operator sets.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context
from pydantic import SecretStr

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
SECURITY_PROTOCOLS: tuple[str, ...] = get_args(SecurityProtocol)
SASL_MECHANISMS: tuple[str, ...] = get_args(SaslMechanism)


def uses_sasl(protocol: str) -> bool:
    return protocol.startswith("SASL_")


def uses_tls(protocol: str) -> bool:
    return protocol.endswith("SSL")


@dataclass(frozen=True)
class KafkaConnection:
    """Where the brokers are and how a client proves who it is; see the module docstring."""

    bootstrap: str
    """``host:port[,host:port]`` of the brokers' listener for this security protocol."""
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = field(default=None, repr=False)
    ca_file: Path | None = None
    """PEM file of the CA certificates that signed the brokers' certificates; None: the system's."""

    def __post_init__(self) -> None:
        if not self.bootstrap:
            raise ValueError("a Kafka connection needs the brokers' address (host:port)")
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise ValueError(f"security protocol {self.security_protocol!r} is not one of {SECURITY_PROTOCOLS}")
        sasl = (self.sasl_mechanism, self.sasl_username, self.sasl_password)
        if uses_sasl(self.security_protocol):
            if self.sasl_mechanism not in SASL_MECHANISMS:
                raise ValueError(f"{self.security_protocol} needs a SASL mechanism: one of {SASL_MECHANISMS}")
            if not self.sasl_username or self.sasl_password is None or not self.sasl_password.get_secret_value():
                raise ValueError(f"{self.security_protocol} needs a SASL username and password")
        elif any(value is not None for value in sasl):
            raise ValueError(
                f"a SASL mechanism, username or password is used only with SASL_*, not {self.security_protocol}"
            )
        if self.ca_file is not None and not uses_tls(self.security_protocol):
            raise ValueError(f"a CA file is used only with SSL or SASL_SSL, not {self.security_protocol}")

    @classmethod
    def of(cls, target: KafkaConnection | str) -> KafkaConnection:
        """``target`` itself, or a plaintext connection to the ``host:port[,…]`` it names."""
        return target if isinstance(target, KafkaConnection) else cls(bootstrap=target)

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context that checks the brokers' certificates and host names (None without TLS)."""
        if not uses_tls(self.security_protocol):
            return None
        context: ssl.SSLContext = create_ssl_context(cafile=str(self.ca_file) if self.ca_file is not None else None)
        return context

    def options(self) -> dict[str, Any]:
        """The keyword arguments every aiokafka client (producer, consumer, admin) takes to connect."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        if uses_sasl(self.security_protocol):
            assert self.sasl_password is not None  # __post_init__ made sure
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": self.sasl_password.get_secret_value(),
            }
        context = self.ssl_context()
        if context is not None:
            options["ssl_context"] = context
        return options

    def producer(self, **kwargs: Any) -> AIOKafkaProducer:
        return AIOKafkaProducer(**self.options(), **kwargs)

    def consumer(self, *topics: str, **kwargs: Any) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(*topics, **self.options(), **kwargs)

    def admin(self, **kwargs: Any) -> AIOKafkaAdminClient:
        return AIOKafkaAdminClient(**self.options(), **kwargs)
