"""The ``koopkracht`` command line: run the stack, the local Kafka, the topics, each service."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from infra.kafka import ClusterSpec, KafkaCluster
from services.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from services.demo import Organisation
    from services.observability import Observed
    from services.readmodel.retention import Retention
    from services.stack import Stack
    from streams.connection import KafkaConnection

app = typer.Typer(
    help="Koopkracht: many organisations negotiate with one vendor as a single buyer.",
    no_args_is_help=True,
    add_completion=False,
)
kafka_app = typer.Typer(help="The local Apache Kafka (KRaft, on loopback).", no_args_is_help=True)
topics_app = typer.Typer(help="The topics of the registry.", no_args_is_help=True)
db_app = typer.Typer(
    help="The read model's database (SQLite by default, or KOOPKRACHT_DATABASE_URL).", no_args_is_help=True
)
app.add_typer(kafka_app, name="kafka")
app.add_typer(topics_app, name="topics")
audit_app = typer.Typer(help="Prove the log: hash chains, replay, state topic and read model.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")


class _Console(Console):
    """A console that falls silent, instead of exiting, when its reader is gone.

    Rich's own answer to a broken pipe is ``SystemExit``; raised from a progress line of
    ``make demo | tee log`` stopped with Ctrl-C (tee dies first), it would skip the stack's cleanup
    and leave Kafka and the services running. Here the output goes to ``/dev/null`` from then on,
    so that the interpreter's last flush cannot fail either.
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.file.fileno())
            os.close(devnull)


console = _Console(stderr=True)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Folder for the local Kafka, SQLite and logs [KOOPKRACHT_DATA_DIR].")
]


def _settings(**overrides: object) -> Settings:
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


def _cluster(settings: Settings, nodes: int | None = None, *, starting: bool = False) -> KafkaCluster:
    """The local cluster. Only ``start`` imposes a shape; stop and status use the saved one."""
    saved = KafkaCluster(settings.data_dir)
    if saved.saved_spec() is not None and (not starting or nodes is None):
        return saved
    spec = ClusterSpec(nodes=nodes or settings.kafka_nodes, base_port=settings.kafka_base_port)
    return KafkaCluster(settings.data_dir, spec)


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


# -- kafka -----------------------------------------------------------------------------------


@kafka_app.command("start")
def kafka_start(
    nodes: Annotated[int | None, typer.Option(help="1 or 3 nodes [KOOPKRACHT_KAFKA_NODES].")] = None,
    data_dir: DataDir = None,
) -> None:
    """Start the local Kafka in the background and wait until it answers."""
    from infra.kafka import KafkaError

    settings = _settings(data_dir=data_dir)
    if not settings.local_kafka:
        raise _fail(f"KOOPKRACHT_KAFKA_BOOTSTRAP is set ({settings.kafka_bootstrap}): nothing local to start")
    try:
        cluster = _cluster(settings, nodes, starting=True)
        with console.status("starting Kafka") as status:
            cluster.start(progress=lambda m: status.update(m))
    except KafkaError as exc:
        raise _fail(str(exc)) from None
    console.print(f"Kafka ({cluster.spec.nodes} node(s)) is ready at [bold]{cluster.bootstrap}[/bold]")
    print(cluster.bootstrap)


@kafka_app.command("stop")
def kafka_stop(data_dir: DataDir = None) -> None:
    """Stop the local Kafka cleanly."""
    cluster = _cluster(_settings(data_dir=data_dir))
    if not cluster.running():
        console.print("Kafka is not running")
        return
    cluster.stop()
    console.print("Kafka stopped")


@kafka_app.command("status")
def kafka_status(data_dir: DataDir = None) -> None:
    """Show each local Kafka node; exit code 1 when none runs."""
    cluster = _cluster(_settings(data_dir=data_dir))
    table = Table("node", "pid", "state", "address")
    for node in cluster.status():
        table.add_row(
            str(node.index + 1),
            str(node.pid or "-"),
            "running" if node.alive else "stopped",
            f"127.0.0.1:{node.broker_port}",
        )
    Console().print(table)
    if not cluster.running():
        raise typer.Exit(1)


# -- topics ----------------------------------------------------------------------------------


def _bootstrap(settings: Settings) -> str:
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    cluster = _cluster(settings)
    if not cluster.running():
        raise _fail("the local Kafka is not running: start it with `koopkracht kafka start`")
    return cluster.bootstrap


def _kafka(settings: Settings) -> KafkaConnection:
    """How this process reaches Kafka: the configured cluster with its TLS and SASL, or the local one."""
    return settings.kafka_connection(_bootstrap(settings))


@topics_app.command("ensure")
def topics_ensure(data_dir: DataDir = None) -> None:
    """Create the registry's topics, or verify that they exist as declared."""
    from infra.kafka.topics import ensure_topics

    settings = _settings(data_dir=data_dir)
    reports = asyncio.run(ensure_topics(_kafka(settings), settings.topic_prefix))
    table = Table("topic", "result", "detail")
    for report in reports:
        colour = {"created": "green", "ok": "green", "mismatch": "red"}[report.action]
        table.add_row(report.name, f"[{colour}]{report.action}[/{colour}]", report.detail)
    Console().print(table)
    if any(r.action == "mismatch" for r in reports):
        raise typer.Exit(1)


@topics_app.command("chart")
def topics_chart(
    output: Annotated[
        Path | None, typer.Option(help="Write to this file (the chart's files/registry.json); stdout when unset.")
    ] = None,
) -> None:
    """The registry's topics, each process's Kafka ACLs and the settings' names, as the Helm chart
    reads them (its Strimzi KafkaTopic and KafkaUser resources; its check of setting names)."""
    from infra.kafka.access import chart_registry_text

    text = chart_registry_text(Settings.model_fields)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        console.print(f"wrote {output}")


# -- services ----------------------------------------------------------------------------------


@app.command("worker")
def worker(data_dir: DataDir = None) -> None:
    """Run the negotiation worker (the single writer of each negotiation) until SIGTERM or Ctrl-C."""
    from services.logging import configure_logging
    from services.observability import worker_probe
    from streams.app import MissingTopics, NegotiationWorker, RecoveryError, WorkerConfig
    from streams.metrics import WorkerMetrics

    settings = _settings(data_dir=data_dir)
    configure_logging(settings.log_format, settings.log_level)
    config = WorkerConfig(
        bootstrap=_kafka(settings),
        topic_prefix=settings.topic_prefix,
        sigkill_after_commands=settings.fault_sigkill_after_commands,
        sigstop_after_commands=settings.fault_sigstop_after_commands,
        state_interval_ms=settings.state_interval_ms,
        limits=settings.limits(),
    )

    observed = _observe("worker", settings)
    negotiation_worker = NegotiationWorker(config, WorkerMetrics(observed.registry), observed.tracing)
    probe = worker_probe(negotiation_worker, observed.registry)
    try:
        _run_until_signal(lambda stop: observed.run(negotiation_worker.run(stop), probe))
    except (MissingTopics, RecoveryError) as exc:
        raise _fail(str(exc)) from None


def _observe(process: str, settings: Settings) -> Observed:
    """The process's metrics endpoint (on its port: ``KOOPKRACHT_METRICS_PORT``, else its default) and tracing."""
    from services.observability import EndpointError, observe

    try:
        return observe(process, settings)
    except EndpointError as exc:
        raise _fail(str(exc)) from None


def _run_until_signal(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(run())


def _database(settings: Settings) -> Engine:
    from services.readmodel.store import SchemaOutOfDate, create_db_engine, require_current_schema

    engine = create_db_engine(settings.sqlalchemy_url)
    try:
        require_current_schema(engine)
    except SchemaOutOfDate as exc:
        raise _fail(str(exc)) from None
    return engine


@app.command("projector")
def projector(data_dir: DataDir = None) -> None:
    """Run the read-model projector (events topic -> SQL tables) until SIGTERM or Ctrl-C."""
    from services.logging import configure_logging
    from services.metrics import ProjectorMetrics
    from services.observability import projector_probe
    from services.readmodel.projector import Projector

    settings = _settings(data_dir=data_dir)
    configure_logging(settings.log_format, settings.log_level)
    engine = _database(settings)
    observed = _observe("projector", settings)
    read_model = Projector(
        engine,
        _kafka(settings),
        settings.topic_prefix,
        metrics=ProjectorMetrics(observed.registry),
        tracing=observed.tracing,
    )
    probe = projector_probe(read_model, observed.registry, engine)
    _run_until_signal(lambda stop: observed.run(read_model.run(stop), probe))


@app.command("webhooks")
def webhooks(data_dir: DataDir = None) -> None:
    """Run the webhook dispatcher (signed deliveries, retries) and the purge of what is past
    retention until SIGTERM or Ctrl-C."""
    from services.logging import configure_logging
    from services.metrics import DispatcherMetrics
    from services.observability import dispatcher_probe
    from services.readmodel.retention import Purger
    from services.subscriptions.destinations import DestinationPolicy
    from services.subscriptions.webhooks import Dispatcher, DispatchPolicy

    settings = _settings(data_dir=data_dir)
    configure_logging(settings.log_format, settings.log_level)
    engine = _database(settings)
    policy = DispatchPolicy(
        retry_max_s=settings.webhook_retry_max_s,
        give_up_after_s=settings.webhook_give_up_after_s,
        timeout_s=settings.webhook_timeout_s,
        destinations=DestinationPolicy.from_settings(settings.webhook_allow, settings.webhook_allow_http),
    )
    purger = Purger(engine, _retention(settings), settings.purge_interval_s)
    observed = _observe("webhooks", settings)
    dispatcher = Dispatcher(engine, policy, metrics=DispatcherMetrics(observed.registry))
    probe = dispatcher_probe(dispatcher, engine)

    async def both(stop: asyncio.Event) -> None:
        await asyncio.gather(dispatcher.run(stop), purger.run(stop))

    _run_until_signal(lambda stop: observed.run(both(stop), probe))


@app.command("scheduler")
def scheduler(data_dir: DataDir = None) -> None:
    """Run the scheduler (time, as a command: a Tick to each negotiation with a commitment past its
    due date, every KOOPKRACHT_TICK_INTERVAL_S) until SIGTERM or Ctrl-C."""
    from services.logging import configure_logging
    from services.scheduler import serve

    settings = _settings(data_dir=data_dir)
    configure_logging(settings.log_format, settings.log_level)
    engine = _database(settings)
    kafka = _kafka(settings)
    observed = _observe("scheduler", settings)
    _run_until_signal(lambda stop: serve(engine, kafka, settings, stop, observed))


@app.command("purge")
def purge(data_dir: DataDir = None) -> None:
    """Delete once what is past retention (the webhook dispatcher does it every
    KOOPKRACHT_PURGE_INTERVAL_S) and say how much."""
    from services.logging import configure_logging
    from services.readmodel import retention

    settings = _settings(data_dir=data_dir)
    configure_logging(settings.log_format, settings.log_level)
    purged = retention.purge(_database(settings), _retention(settings))
    console.print(
        f"purged {purged.sessions} expired session(s), {purged.deliveries} delivery(ies) with "
        f"{purged.attempts} attempt(s), {purged.idempotency_records} idempotency record(s)"
    )


def _retention(settings: Settings) -> Retention:
    from services.readmodel.retention import Retention

    return Retention(delivery_s=settings.delivery_retention_s, idempotency_s=settings.idempotency_retention_s)


@app.command("api")
def api(
    port: Annotated[int | None, typer.Option(help="HTTP port [KOOPKRACHT_API_PORT].")] = None,
    data_dir: DataDir = None,
) -> None:
    """Serve the HTTP API (docs at /docs) until SIGTERM or Ctrl-C."""
    import uvicorn

    from services.api.app import create_app
    from services.logging import configure_logging

    settings = _settings(data_dir=data_dir, api_port=port)
    configure_logging(settings.log_format, settings.log_level)
    engine = _database(settings)
    settings = settings.model_copy(update={"kafka_bootstrap": _bootstrap(settings)})
    if settings.admin_token is None:
        console.print("[yellow]KOOPKRACHT_ADMIN_TOKEN is not set: nobody can create organisations[/yellow]")
    uvicorn.run(
        create_app(settings, engine),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None) -> None:
    """Create or migrate the read model's tables to this version's schema."""
    from services.readmodel.store import upgrade

    settings = _settings(data_dir=data_dir)
    upgrade(settings.sqlalchemy_url)
    console.print("the database schema is up to date")


# -- audit ---------------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify(
    negotiation: Annotated[str | None, typer.Option("--negotiation", help="Only this negotiation.")] = None,
    read_model: Annotated[
        bool, typer.Option("--read-model/--no-read-model", help="Compare with the read model's database.")
    ] = True,
    require_hashes: Annotated[
        bool,
        typer.Option(
            "--require-hashes", help="Every event must carry hashes (a log that began hashed: none may be stripped)."
        ),
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Check every hash chain of the events topic, replay every negotiation with the pure core, and
    compare with the state topic and the read model; name the first broken link or difference of
    each negotiation, and exit 1 if there is one."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from services.audit import audit

    settings = _settings(data_dir=data_dir)
    engine = _database(settings) if read_model else None
    kafka = _kafka(settings)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(phase: str, advance: int, total: int | None) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            elif total is not None:
                bar.update(tasks[phase], total=total)
            if advance:
                bar.advance(tasks[phase], advance)

        report = asyncio.run(
            audit(
                kafka,
                settings.topic_prefix,
                engine,
                negotiation,
                require_hashes=require_hashes,
                progress=progress,
            )
        )
    table = Table("negotiation", "events", "chain", "head", "state topic", "read model", title="audit")
    for n in sorted(report.negotiations.values(), key=lambda n: n.negotiation_id):
        if not n.chain_ok:
            chain = "[red]broken[/red]"
        elif n.chain_from is None:
            chain = "[yellow]no hashes[/yellow]"
        else:
            chain = "[green]ok[/green]" + (f" from {n.chain_from}" if n.chain_from != 1 else "")
        table.add_row(
            n.negotiation_id,
            str(n.events),
            chain,
            (n.head_hash or "-")[:16],
            _verdict(n.state_topic),
            _verdict(n.read_model),
        )
    out = Console()
    out.print(table)
    findings = report.findings
    for finding in findings:
        out.print(f"[red]✗[/red] {escape(str(finding))}")
    if findings:
        out.print(f"[red]{len(findings)} finding(s)[/red] in {report.events_read} events read")
        raise typer.Exit(1)
    out.print(f"[green]the log is intact[/green]: {report.events_read} events, {len(report.negotiations)} negotiations")


def _verdict(word: str) -> str:
    colour = {"ok": "green", "differs": "red"}.get(word, "yellow")
    return f"[{colour}]{word}[/{colour}]"


# -- the whole stack ---------------------------------------------------------------------------


@app.command("up")
def up(
    port: Annotated[int | None, typer.Option(help="HTTP port of the API [KOOPKRACHT_API_PORT].")] = None,
    data_dir: DataDir = None,
) -> None:
    """Run the whole stack in the foreground, restarting a process that exits, until Ctrl-C or SIGTERM."""
    from services.stack import StackError

    settings = _settings(data_dir=data_dir, api_port=port)
    stop = _stop_on_signals()
    stack = _stack(settings)
    try:
        stack.start(stop=stop)
        if not stop.is_set():
            console.print(stack.banner())
        stack.wait(stop)
    except StackError as exc:
        raise _fail(str(exc)) from None
    finally:
        _stop_stack(stack)


def _stop_on_signals() -> threading.Event:
    """An event that SIGINT (Ctrl-C), SIGTERM and SIGHUP (the terminal closed) set.

    SIGPIPE stays ignored (Python's default), so a write to a closed pipe raises an error that the
    console absorbs, rather than killing the process before it stops its children.
    """
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    return stop


def _stack(settings: Settings) -> Stack:
    """The stack, its supervisor logging to ``<data dir>/logs/supervisor.log``, its progress to the console."""
    from services.logging import configure_logging
    from services.stack import Stack

    stack = Stack(settings, progress=_progress)
    stack.logs.mkdir(parents=True, exist_ok=True)
    configure_logging(settings.log_format, settings.log_level, stream=stack.supervisor_log.open("a", buffering=1))
    return stack


def _progress(message: str) -> None:
    console.print(f"[dim]{message}[/dim]")


def _stop_stack(stack: Stack) -> None:
    """Stop every child and the local Kafka; nothing said on the way (the console may be gone) can prevent it."""
    try:
        with contextlib.suppress(Exception):
            console.print("stopping …")
    finally:
        stack.stop()
    with contextlib.suppress(Exception):
        console.print("stopped")


@app.command("demo")
def demo(
    port: Annotated[int | None, typer.Option(help="HTTP port of the API [KOOPKRACHT_API_PORT].")] = None,
    data_dir: DataDir = None,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Keep serving after the story.")] = True,
) -> None:
    """Start the stack and play a whole negotiation on it: 12 institutions, a vendor, 3 rounds, an agreement."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from services.demo import TICK_INTERVAL_S, Demo, DemoError
    from services.stack import StackError, api_url

    ticks = None if "KOOPKRACHT_TICK_INTERVAL_S" in os.environ else TICK_INTERVAL_S
    settings = _settings(data_dir=data_dir, api_port=port, tick_interval_s=ticks)
    stop = _stop_on_signals()
    stack = _stack(settings)
    started = time.monotonic()
    try:
        stack.start(stop=stop)
        if stop.is_set():
            return
        url = api_url(settings)
        story = Demo(url, stack.admin_token, settings.data_dir, step=lambda m: None)
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True
        ) as progress:
            task = progress.add_task("the negotiation", total=None)

            def step(message: str) -> None:
                progress.update(task, description=message)
                progress.console.print(f"  [green]✓[/green] {message}")

            story.step = step
            try:
                result = story.run()
            finally:
                story.close()
        stack.check()  # a process that kept crashing during the story stops the demo, as it would `up`
        _Console().print(_demo_table(result.state))
        _Console().print(_commitments_table(result.commitments))
        console.print(f"The story took {time.monotonic() - started:.0f} s. The release: {result.release_path}")
        for line in _sign_in_lines(url, result.organisations):
            console.print(line)
        kept = settings.data_dir.resolve() / "demo" / "organisations.json"
        console.print(f"  (every integration key and personal token: {kept})")
        if serve:
            console.print("Serving until Ctrl-C.")
            stack.wait(stop)
    except (StackError, DemoError) as exc:
        raise _fail(str(exc)) from None
    finally:
        _stop_stack(stack)


def _sign_in_lines(url: str, organisations: dict[str, Organisation]) -> list[str]:
    """How to sign in to the dashboard after the demo: people sign in with their personal tokens
    (SPEC section 10), so the coordinator's, TU Delft's and the vendor's owners, and the TU Delft
    people of the story. With single sign-on there are no tokens to show."""
    from services.demo import DRAFTING, PEOPLE

    owners = [organisations[short] for short in ("surf", DRAFTING, "vendor")]
    if any(o.owner_token is None for o in owners):
        return [f"Dashboard: [bold]{url}/signin[/bold] (API docs at {url}/docs): sign in with single sign-on."]
    lines = [f"Dashboard: [bold]{url}/signin[/bold] (API docs at {url}/docs). Sign in with a personal token:"]
    lines += [f"  {o.role:12} {o.name}, its owner: {o.owner_token}" for o in owners]
    drafting = organisations[DRAFTING]
    for does, token in drafting.people.items():
        name, role = PEOPLE[does]
        lines.append(f"  {drafting.role:12} {drafting.name}, {name} ({role}, the {does}): {token}")
    return lines


def _commitments_table(document: dict[str, Any]) -> Table:
    reopened = ", ".join(document["reopened"]) or "nothing"
    table = Table("commitment", "due", "status", "deliveries", "verdict",
                  title=f"Commitments: phase {document['phase']}, reopened on {reopened}")  # fmt: skip
    for commitment in document["commitments"]:
        verdict = commitment["verdict"] or {}
        table.add_row(
            commitment["key"],
            (commitment["due"] or "-")[:16].replace("T", " "),
            commitment["status"],
            str(commitment["deliveries"]),
            verdict.get("verdict", "-").replace("_", " "),
        )
    return table


def _demo_table(state: dict[str, Any]) -> Table:
    table = Table("item", "target", "vendor's offer", "status", "settled", title=f"The offers: phase {state['phase']}, "
                  f"round {state['round']}, cohesion {state['cohesion']:.0%}")  # fmt: skip
    for item in state["items"]:
        offer = item["offer"] or {}
        offered = offer.get("option") or offer.get("value")
        words = offer.get("verdict", "-") + (f" {offered}" if offered is not None else "")
        target = item["target"]
        table.add_row(
            item["key"],
            ", ".join(target) if isinstance(target, list) else str(target),
            words,
            item["status"],
            "yes" if item["settled"] else "no",
        )
    return table


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        app()
    except SettingsError as exc:
        console.print(f"[red]{exc.code}[/red]")
        sys.exit(2)
