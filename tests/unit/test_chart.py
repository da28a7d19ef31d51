"""The Helm chart stays true to the code: real commands and settings, the registry's topics, the ACLs
of docs/security.md, partitions that cap the workers, no secret in values, every object valid.

The tests that render need the real helm (infra/helm/install-helm.sh builds it into .tools/bin).
Without it they skip on a developer's machine and fail in CI (CI=true), where .ci/run installs it.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from infra.kafka.access import PRINCIPALS, chart_registry_text
from schemas.topics import ALL_TOPICS, COMMANDS
from services.readmodel.projector import Projector
from services.settings import Settings
from streams.app import WorkerConfig
from tests import chart
from tests.certificates import Authority
from tests.unit.real_names import cli_commands, setting_variables

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ("worker", "projector", "webhooks", "scheduler", "api")
METRICS_PORTS = {"worker": 9101, "projector": 9102, "webhooks": 9103, "scheduler": 9104}
SECRET_SETTINGS = {
    "KOOPKRACHT_DATABASE_URL",
    "KOOPKRACHT_ADMIN_TOKEN",
    "KOOPKRACHT_METRICS_TOKEN",
    "KOOPKRACHT_KAFKA_SASL_PASSWORD",
    "KOOPKRACHT_OIDC_CLIENT_SECRET",
}
NOT_YET_SETTINGS: set[str] = set()
"""Settings of the deployment issue that the chart sets and that other branches of that issue add to
services/settings.py (each process's metrics port; Kafka TLS and SASL). Each name leaves this set
when Settings has it: test_no_setting_is_still_awaited_that_the_code_has fails until then."""


def _helm_or_skip() -> None:
    if chart.helm_binary() is not None:
        return
    reason = "helm is not installed (run infra/helm/install-helm.sh or make chart)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must render the chart (.ci/run installs helm)")
    pytest.skip(reason)


needs_helm = pytest.mark.usefixtures("helm_installed")


@pytest.fixture(scope="module")
def helm_installed() -> None:
    _helm_or_skip()


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    _helm_or_skip()
    return {label: chart.render(values) for label, values in chart.VALUES.items()}


def workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in ("Deployment", "Job")]


def containers(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(o["metadata"]["name"], c) for o in workloads(objects) for c in o["spec"]["template"]["spec"]["containers"]]


def deployment(objects: list[dict[str, Any]], process: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"].endswith(f"-{process}")]
    return found


def env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def render_error(*sets: str, values: Path | None = chart.VALUES["minimal"]) -> str:
    with pytest.raises(chart.ChartError) as refused:
        chart.render(values, sets=sets)
    return str(refused.value)


# -- the registry's file and the ACL table ---------------------------------------------------------


def test_the_chart_reads_the_topics_and_acls_the_code_declares_now() -> None:
    # Given the file the chart renders its Strimzi resources from
    committed = (chart.CHART / "files" / "registry.json").read_text()
    # Then it is what `koopkracht topics chart` writes from the code today
    assert committed == chart_registry_text(Settings.model_fields), (
        "infra/helm/koopkracht/files/registry.json is stale: run "
        "`koopkracht topics chart --output infra/helm/koopkracht/files/registry.json`"
    )


def test_each_topic_is_written_only_by_its_single_writer() -> None:
    # Given the registry's single writers and the principals' grants
    for topic in ALL_TOPICS:
        writers = {
            p.process
            for p in PRINCIPALS
            for g in p.grants
            if g.resource == "topic" and g.target == topic and "Write" in g.operations
        }
        # Then only the declared writers may write the topic
        assert writers == {w.strip() for w in topic.writer.split(",")}, topic.suffix


def test_the_acl_groups_are_the_groups_the_processes_join() -> None:
    # Given the names the worker and the projector use for prefix coop
    worker = WorkerConfig(bootstrap="x:1", topic_prefix="coop")
    projector = Projector(create_engine("sqlite://"), "x:1", "coop")
    granted = {(p.process, g.resource): g.name("coop") for p in PRINCIPALS for g in p.grants}
    # Then the ACLs name the same groups, and the worker's transactional ids start with its prefix
    assert granted[("worker", "group")] == worker.group
    assert granted[("projector", "group")] == projector.group
    assert granted[("api", "group")] in {worker.group, projector.group}
    assert f"{worker.group}.7".startswith(granted[("worker", "transactionalId")])


def _documented_acls() -> set[tuple[str, str, str, str, str]]:
    """(principal, resource type, name, pattern, operation) of the kafka-acls.sh lines in security.md."""
    text = (ROOT / "docs" / "security.md").read_text().replace("\\\n", " ")
    found: set[tuple[str, str, str, str, str]] = set()
    for line in text.splitlines():
        if not line.startswith("$ACLS "):
            continue
        words = shlex.split(line)[1:]
        options: dict[str, list[str]] = {}
        for flag, value in zip(words[::2], words[1::2], strict=True):
            options.setdefault(flag, []).append(value)
        (principal,) = options["--allow-principal"]
        pattern = "prefix" if options.get("--resource-pattern-type") == ["prefixed"] else "literal"
        for flag, kind in (("--topic", "topic"), ("--group", "group"), ("--transactional-id", "transactionalId")):
            for name in options.get(flag, []):
                for operation in options["--operation"]:
                    found.add((principal.removeprefix("User:"), kind, name, pattern, operation))
    return found


def test_the_acls_are_the_ones_docs_security_tells_operators_to_add() -> None:
    # Given the commands of docs/security.md for the hub's own principals (prefix koopkracht)
    documented = {acl for acl in _documented_acls() if acl[0].startswith("koopkracht-")}
    # When the table the chart renders KafkaUsers from is expanded for that prefix
    declared = {
        (p.user("koopkracht"), g.resource, g.name("koopkracht"), g.pattern, operation)
        for p in PRINCIPALS
        for g in p.grants
        for operation in g.operations
    }
    # Then they are the same rights
    assert documented, "no kafka-acls.sh lines found in docs/security.md"
    assert declared == documented


# -- the chart names only real commands and settings ----------------------------------------------


def test_no_setting_is_still_awaited_that_the_code_has() -> None:
    assert not NOT_YET_SETTINGS & setting_variables(), "remove these from NOT_YET_SETTINGS"


def test_every_variable_the_chart_sets_is_a_real_setting(rendered: dict[str, list[dict[str, Any]]]) -> None:
    known = setting_variables() | NOT_YET_SETTINGS
    for label, objects in rendered.items():
        for workload, container in containers(objects):
            for name in env(container):
                assert name.startswith("KOOPKRACHT_"), f"{label} {workload}: {name} is no Koopkracht setting"
                assert name in known, f"{label} {workload}: {name} is not a setting (services/settings.py)"


def test_every_container_runs_a_real_cli_command(rendered: dict[str, list[dict[str, Any]]]) -> None:
    commands = cli_commands()
    for label, objects in rendered.items():
        for workload, container in containers(objects):
            words = tuple(w for w in container["args"] if not w.startswith("-"))
            assert words in commands, f"{label} {workload}: `koopkracht {' '.join(words)}` is not a command"


def test_the_checks_would_notice_a_wrong_name() -> None:
    assert ("topics", "chart") in cli_commands()
    assert ("db", "upgrade") in cli_commands()
    assert "KOOPKRACHT_TOPIC_PREFIX" in setting_variables()
    assert "KOOPKRACHT_NO_SUCH_SETTING" not in setting_variables()


# -- what each process gets ------------------------------------------------------------------------


def test_one_deployment_per_process_with_its_command_probes_and_resources(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for label, objects in rendered.items():
        for process in PROCESSES:
            # Given the process's Deployment
            spec = deployment(objects, process)["spec"]["template"]["spec"]
            (container,) = spec["containers"]
            # Then it runs that process from the one image
            assert container["args"] == [process]
            # And is alive on /healthz and ready on /readyz of its own port (the API: ready when it can
            # serve, whatever another process does)
            port = 8000 if process == "api" else METRICS_PORTS[process]
            (declared,) = container["ports"]
            assert declared["containerPort"] == port, (label, process)
            assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": declared["name"]}
            ready = "/readyz?own=true" if process == "api" else "/readyz"
            assert container["readinessProbe"]["httpGet"] == {"path": ready, "port": declared["name"]}
            if process != "api":
                assert env(container)["KOOPKRACHT_METRICS_PORT"]["value"] == str(port)
            # And has requests and a memory limit
            assert container["resources"]["requests"]["cpu"], (label, process)
            assert container["resources"]["limits"]["memory"], (label, process)
    images = {c["image"] for _, c in containers(rendered["all-on"])}
    assert images == {"registry.example.org/koopkracht:0.1.0"}


def test_the_projector_runs_alone_and_is_replaced_not_doubled(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for objects in rendered.values():
        projector = deployment(objects, "projector")["spec"]
        assert projector["replicas"] == 1
        assert projector["strategy"] == {"type": "Recreate"}


def test_secrets_come_only_from_secrets(rendered: dict[str, list[dict[str, Any]]]) -> None:
    # Given every option on, with a secret for each
    for workload, container in containers(rendered["all-on"]):
        for name, variable in env(container).items():
            # Then a secret setting is always a reference to a Secret, never a value
            if name in SECRET_SETTINGS:
                assert "value" not in variable and variable["valueFrom"]["secretKeyRef"]["name"], (workload, name)
    api = env(deployment(rendered["all-on"], "api")["spec"]["template"]["spec"]["containers"][0])
    assert api["KOOPKRACHT_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "koopkracht-admin", "key": "token"}
    assert api["KOOPKRACHT_OIDC_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "koopkracht-oidc"
    # And the worker, which has no database, gets no database URL
    worker = env(deployment(rendered["all-on"], "worker")["spec"]["template"]["spec"]["containers"][0])
    assert "KOOPKRACHT_DATABASE_URL" not in worker


@needs_helm
def test_a_secret_or_a_misspelt_setting_is_refused() -> None:
    # A secret as a value: the render stops and names the Secret reference to use instead
    message = render_error("settings.admin_token=hunter2hunter2hunter2hunter2hunter2")
    assert "adminToken.existingSecret" in message
    assert "database.existingSecret" in render_error("api.settings.database_url=postgresql://u:p@h/db")
    # A setting that does not exist: the render stops instead of the process ignoring it
    assert '"tick_intervall_s" is not a setting' in render_error("scheduler.settings.tick_intervall_s=30")


def test_each_process_signs_in_to_kafka_as_its_own_principal(rendered: dict[str, list[dict[str, Any]]]) -> None:
    # Given SASL with one Secret of passwords (no Strimzi)
    objects = rendered["sasl"]
    for process in ("worker", "projector", "scheduler", "api"):
        variables = env(deployment(objects, process)["spec"]["template"]["spec"]["containers"][0])
        # Then each process is koopkracht-<process>, with its own password
        assert variables["KOOPKRACHT_KAFKA_SASL_USERNAME"]["value"] == f"koopkracht-{process}"
        assert variables["KOOPKRACHT_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "koopkracht-kafka-passwords",
            "key": process,
        }
    # And the webhook dispatcher, which never talks to Kafka, has no Kafka credentials
    webhooks = env(deployment(objects, "webhooks")["spec"]["template"]["spec"]["containers"][0])
    assert "KOOPKRACHT_KAFKA_SASL_PASSWORD" not in webhooks
    # And the topics job signs in as the administrator
    (topics,) = [
        o
        for o in objects
        if o["kind"] == "Job" and o["spec"]["template"]["spec"]["containers"][0]["args"] == ["topics", "ensure"]
    ]
    variables = env(topics["spec"]["template"]["spec"]["containers"][0])
    assert variables["KOOPKRACHT_KAFKA_SASL_USERNAME"]["value"] == "koopkracht-admin"


def test_migrations_and_topics_run_before_install_and_upgrade(rendered: dict[str, list[dict[str, Any]]]) -> None:
    jobs = {
        tuple(o["spec"]["template"]["spec"]["containers"][0]["args"]): o
        for o in rendered["minimal"]
        if o["kind"] == "Job"
    }
    assert set(jobs) == {("db", "upgrade"), ("topics", "ensure")}
    for job in jobs.values():
        assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    # With Strimzi's topics there is no topics job
    assert [
        o["spec"]["template"]["spec"]["containers"][0]["args"] for o in rendered["all-on"] if o["kind"] == "Job"
    ] == [["db", "upgrade"]]


# -- scaling limits ------------------------------------------------------------------------------


@needs_helm
def test_more_workers_than_partitions_is_refused() -> None:
    # Given the commands topic's partitions
    partitions = COMMANDS.partitions
    # When an operator asks for one worker more
    message = render_error(f"worker.replicas={partitions + 1}")
    # Then the render stops and says why and how many may run
    assert f"{partitions} partitions" in message and f"at most {partitions}" in message
    # And as many as there are partitions render
    assert deployment(chart.render(chart.VALUES["minimal"], sets=(f"worker.replicas={partitions}",)), "worker")


@needs_helm
def test_keda_may_not_scale_past_the_partitions() -> None:
    message = render_error("keda.enabled=true", f"keda.maxReplicaCount={COMMANDS.partitions + 1}")
    assert "keda.maxReplicaCount" in message and f"at most {COMMANDS.partitions}" in message


def test_keda_scales_the_workers_on_their_groups_lag(rendered: dict[str, list[dict[str, Any]]]) -> None:
    (scaled,) = [o for o in rendered["all-on"] if o["kind"] == "ScaledObject"]
    worker = deployment(rendered["all-on"], "worker")
    assert scaled["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    assert "replicas" not in worker["spec"], "KEDA owns the worker's replica count"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["metadata"]["topic"] == COMMANDS.name("coop")
    assert trigger["metadata"]["consumerGroup"] == WorkerConfig(bootstrap="x:1", topic_prefix="coop").group
    assert scaled["spec"]["maxReplicaCount"] <= COMMANDS.partitions
    assert not [o for o in rendered["minimal"] if o["kind"] == "ScaledObject"], "KEDA is off by default"


@needs_helm
def test_the_least_an_installation_must_say_is_asked_for() -> None:
    assert "kafka.bootstrap is required" in render_error(values=None)
    assert "database.existingSecret is required" in render_error("database.existingSecret=")
    assert "ingress.host" in render_error("ingress.enabled=true")


# -- Strimzi --------------------------------------------------------------------------------------


def test_the_strimzi_topics_are_the_registry(rendered: dict[str, list[dict[str, Any]]]) -> None:
    # Given every option on (prefix coop, Strimzi cluster hub, min.insync.replicas 2)
    topics = {o["spec"]["topicName"]: o for o in rendered["all-on"] if o["kind"] == "KafkaTopic"}
    # Then there is one KafkaTopic per registry topic, as the registry declares it
    assert set(topics) == {t.name("coop") for t in ALL_TOPICS}
    for topic in ALL_TOPICS:
        resource = topics[topic.name("coop")]
        assert resource["metadata"]["labels"]["strimzi.io/cluster"] == "hub"
        assert resource["spec"]["partitions"] == topic.partitions
        assert resource["spec"]["replicas"] == 3
        assert resource["spec"]["config"] == {**topic.configs(), "min.insync.replicas": 2}
        # And uninstalling the release does not delete the log
        assert resource["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert not [o for o in rendered["minimal"] if o["kind"] in ("KafkaTopic", "KafkaUser")], "Strimzi is off by default"


def test_the_strimzi_users_have_the_documented_acls(rendered: dict[str, list[dict[str, Any]]]) -> None:
    users = {o["metadata"]["name"]: o for o in rendered["all-on"] if o["kind"] == "KafkaUser"}
    assert set(users) == {p.user("coop") for p in PRINCIPALS}
    for principal in PRINCIPALS:
        spec = users[principal.user("coop")]["spec"]
        assert spec["authentication"] == {"type": "scram-sha-512"}
        acls = {
            (a["resource"]["type"], a["resource"]["name"], a["resource"]["patternType"], op)
            for a in spec["authorization"]["acls"]
            for op in a["operations"]
        }
        assert acls == {(g.resource, g.name("coop"), g.pattern, op) for g in principal.grants for op in g.operations}
    # And each process reads its password from the Secret Strimzi keeps for its user
    worker = env(deployment(rendered["all-on"], "worker")["spec"]["template"]["spec"]["containers"][0])
    assert worker["KOOPKRACHT_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "coop-worker",
        "key": "password",
    }


# -- ingress -------------------------------------------------------------------------------------


def test_the_ingress_serves_the_api_over_tls_at_the_public_url(rendered: dict[str, list[dict[str, Any]]]) -> None:
    (ingress,) = [o for o in rendered["all-on"] if o["kind"] == "Ingress"]
    assert ingress["spec"]["tls"] == [{"hosts": ["hub.example.org"], "secretName": "hub-example-org-tls"}]
    api = env(deployment(rendered["all-on"], "api")["spec"]["template"]["spec"]["containers"][0])
    assert api["KOOPKRACHT_PUBLIC_URL"]["value"] == "https://hub.example.org"


# -- every object is valid -----------------------------------------------------------------------


def test_every_rendered_object_is_valid(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for objects in rendered.values():
        chart.validate_all(objects)
    kinds = {o["kind"] for objects in rendered.values() for o in objects}
    assert kinds >= chart.CRD_KINDS, "every custom resource kind was rendered and checked"


@needs_helm
def test_the_validation_would_notice_a_wrong_field() -> None:
    # Given a valid Deployment and KafkaUser with one field misspelt
    objects = chart.render(chart.VALUES["all-on"])
    wrong_deployment = deployment(objects, "worker")
    wrong_deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    (user, *_) = [o for o in objects if o["kind"] == "KafkaUser"]
    user["spec"]["authorization"]["acls"][0]["operation"] = "Read"
    # Then neither validates
    with pytest.raises(chart.ChartError, match="livenessProbes"):
        chart.validate(wrong_deployment, chart.OLDEST_KUBERNETES)
    with pytest.raises(chart.ChartError, match="operation"):
        chart.validate(user, chart.OLDEST_KUBERNETES)


def test_the_helm_version_is_pinned_once() -> None:
    script = (ROOT / "infra" / "helm" / "install-helm.sh").read_text()
    assert re.search(r"^HELM_VERSION=v\d+\.\d+\.\d+$", script, re.MULTILINE)


PLACEHOLDER_URL = "postgresql+psycopg://koopkracht:secret@postgres/koopkracht"
PLACEHOLDER_SECRET = "a-value-from-a-secret-" + "x" * 32


def test_every_container_starts_with_the_settings_the_chart_gives_it(
    rendered: dict[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given every container the chart renders, with each value from a Secret standing in as a
    # placeholder (and a CA file where the chart mounts one)
    ca = Authority.create(tmp_path).ca_file
    for label, objects in rendered.items():
        for workload, container in containers(objects):
            variables = {
                name: spec.get(
                    "value", "postgresql+psycopg://u:p@db/k" if "DATABASE" in name else "a-secret-" + "x" * 40
                )
                for name, spec in env(container).items()
                if name.startswith("KOOPKRACHT_")
            }
            if "KOOPKRACHT_KAFKA_CA_FILE" in variables:
                variables["KOOPKRACHT_KAFKA_CA_FILE"] = str(ca)
            for name in [n for n in os.environ if n.startswith("KOOPKRACHT_")]:
                monkeypatch.delenv(name)
            for name, value in variables.items():
                monkeypatch.setenv(name, value)
            # Then its settings load: no process is stopped at start by what the chart set
            # (SASL without credentials, say, in a process that never reaches Kafka)
            try:
                Settings()
            except Exception as exc:  # the message names the setting
                pytest.fail(f"{label}: {workload} does not start: {exc}")
