"""How long from a member's write to the notification: webhook delivery and SSE message (p50/p99).

Starts a local Kafka and the whole stack (SQLite by default, or ``--database postgresql`` with
``KOOPKRACHT_TEST_POSTGRES_URL``), subscribes the coordinator (who sees every position) with a
webhook on a loopback receiver and with a live stream, then lets a member change its position
``--writes`` times at ``--rate`` per second. Each write's latency is measured from just before
the HTTP request to the arrival of the message that carries its value.

    python -m tests.bench.notifications [--writes 200] [--rate 20] [--database sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from infra.kafka import ClusterSpec, KafkaCluster
from tests.conftest import free_base_port
from tests.e2e.conftest import running_stack
from tests.e2e.receiver import Receiver


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]  # noqa: E731
    return {
        "p50": pick(0.5),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = KafkaCluster(Path(tmp) / "kafka", ClusterSpec(nodes=1, base_port=free_base_port(2)))
        cluster.start()
        receiver = Receiver().start()
        try:
            # The receiver is on loopback over http: allowed as an operator allows an internal receiver.
            allow = {"webhook_allow": "127.0.0.1", "webhook_allow_http": True}
            with running_stack(cluster.bootstrap, Path(tmp) / "stack", args.database, **allow) as running:
                _, coordinator_key = running.organisation("Coop", "coordinator")
                vendor_id, _ = running.organisation("Vendor", "vendor")
                member_id, member_key = running.organisation("Member", "member")
                coordinator, member = running.client(coordinator_key), running.client(member_key)
                body = {"title": "Latency", "vendor_id": vendor_id, "items": [{"key": "diagnostic-data-retention"}]}
                nid = coordinator.post("/v1/negotiations", json=body).json()["id"]
                coordinator.post(
                    f"/v1/negotiations/{nid}/members", json={"organisation_id": member_id}
                ).raise_for_status()
                coordinator.post(
                    "/v1/subscriptions", json={"url": receiver.url, "negotiation_id": nid}
                ).raise_for_status()

                sse_arrivals: dict[int, float] = {}
                stop = threading.Event()

                def follow_stream() -> None:
                    client = running.client(coordinator_key)
                    with (
                        contextlib.suppress(httpx.HTTPError),
                        client.stream("GET", f"/v1/negotiations/{nid}/stream", timeout=None) as response,
                    ):
                        data = None
                        for line in response.iter_lines():
                            if line.startswith("data:"):
                                data = json.loads(line[5:])
                            elif line == "" and data is not None:
                                if data["type"] == "PositionStated":
                                    sse_arrivals[int(data["data"]["position"]["value"])] = time.perf_counter()
                                data = None
                            if stop.is_set():
                                return

                threading.Thread(target=follow_stream, daemon=True).start()
                time.sleep(1.0)  # let the stream connect before the first write is timed
                sent: dict[int, float] = {}
                http_ms: list[float] = []
                interval = 1 / args.rate
                next_at = time.perf_counter()
                for value in range(1, args.writes + 1):
                    next_at += interval
                    started = time.perf_counter()
                    sent[value] = started
                    member.put(
                        f"/v1/negotiations/{nid}/positions/diagnostic-data-retention",
                        json={"priority": "must", "value": value},
                    ).raise_for_status()
                    http_ms.append((time.perf_counter() - started) * 1000)
                    time.sleep(max(0.0, next_at - time.perf_counter()))
                deadline = time.monotonic() + 60
                while (len(sse_arrivals) < args.writes or len(receiver.received) < args.writes + 1) and (
                    time.monotonic() < deadline
                ):
                    time.sleep(0.05)
                stop.set()
                webhook_ms = []
                for (_, raw), arrived in zip(receiver.received, receiver.arrived, strict=True):
                    message = json.loads(raw)
                    if message["type"] == "PositionStated":
                        webhook_ms.append((arrived - sent[int(message["data"]["position"]["value"])]) * 1000)
                sse_ms = [(sse_arrivals[v] - sent[v]) * 1000 for v in sent if v in sse_arrivals]
                print(f"{args.writes} writes at {args.rate:g}/s on {args.database}")
                for name, values in (
                    ("HTTP write (2xx)", http_ms),
                    ("webhook delivery", webhook_ms),
                    ("SSE message", sse_ms),
                ):
                    figures = percentiles(values)
                    print(
                        f"  {name:18} n={len(values):4}  " + "  ".join(f"{k}={v:6.1f} ms" for k, v in figures.items())
                    )
        finally:
            receiver.stop()
            cluster.stop()


if __name__ == "__main__":
    main()
