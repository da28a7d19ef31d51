"""Render the Helm chart with the real ``helm`` and validate every rendered object offline.

``make chart`` runs this module: ``helm lint``, then ``helm template`` with each values file of
``infra/helm/koopkracht/ci/`` (the least an installation must say, every option on, SASL without
Strimzi), and every object against its schema: Kubernetes' own kinds with ``kubernetes-validate``
(the schemas it ships, strict: an unknown field is an error), for the oldest Kubernetes the chart
allows and the newest the package knows; the custom resources (Strimzi, KEDA, Prometheus operator)
against the schemas in ``tests/data/crd-schemas``. The unit tests (tests/unit/test_chart.py) use the
same functions. Helm is built by ``infra/helm/install-helm.sh`` into ``.tools/bin``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "infra" / "helm" / "koopkracht"
VALUES = {
    "minimal": CHART / "ci" / "minimal-values.yaml",
    "all-on": CHART / "ci" / "all-on-values.yaml",
    "sasl": CHART / "ci" / "sasl-values.yaml",
}
CRD_SCHEMAS = ROOT / "tests" / "data" / "crd-schemas"
CRD_KINDS = {"KafkaTopic", "KafkaUser", "ScaledObject", "ServiceMonitor"}
OLDEST_KUBERNETES = "1.29"
"""The chart's kubeVersion floor (Chart.yaml)."""


class ChartError(Exception):
    """helm refused (lint or render), or a rendered object is not valid."""


def helm_binary() -> str | None:
    """The Helm that install-helm.sh built, else one on PATH."""
    built = ROOT / ".tools" / "bin" / "helm"
    if built.is_file() and os.access(built, os.X_OK):
        return str(built)
    return shutil.which("helm")


def helm(*args: str) -> str:
    binary = helm_binary()
    if binary is None:
        raise ChartError("helm is not installed: run infra/helm/install-helm.sh (or make chart)")
    done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise ChartError(f"helm {' '.join(args)}:\n{done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def lint(values: Path) -> None:
    helm("lint", "--strict", str(CHART), "-f", str(values))


def render(
    values: Path | None = None, *, sets: tuple[str, ...] = (), release: str = "koopkracht"
) -> list[dict[str, Any]]:
    """Every object ``helm template`` renders (hooks included), in order."""
    args = ["template", release, str(CHART), "--namespace", "hub"]
    if values is not None:
        args += ["-f", str(values)]
    for assignment in sets:
        args += ["--set", assignment]
    return [o for o in yaml.safe_load_all(helm(*args)) if o]


def newest_kubernetes() -> str:
    return kubernetes_validate.latest_version()


@cache
def _crd_validator(kind: str) -> jsonschema.Draft202012Validator:
    metadata = json.loads((CRD_SCHEMAS / "_metadata.json").read_text())
    registry: Registry = Resource.from_contents(metadata) @ Registry()
    schema = json.loads((CRD_SCHEMAS / f"{kind.lower()}.json").read_text())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate(obj: dict[str, Any], kubernetes: str) -> None:
    """Raise ChartError unless ``obj`` is valid for its kind (and, for Kubernetes' own, that version)."""
    name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    if obj.get("kind") in CRD_KINDS:
        errors = sorted(_crd_validator(obj["kind"]).iter_errors(obj), key=lambda e: list(e.path))
        if errors:
            path = ".".join(str(p) for p in errors[0].path)
            raise ChartError(f"{name}: {path}: {errors[0].message}")
        return
    try:
        kubernetes_validate.validate(obj, kubernetes, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        raise ChartError(f"{name} (Kubernetes {kubernetes}): {path}: {exc.message}") from None
    except kubernetes_validate.SchemaNotFoundError as exc:
        # Not skipped: a kind with no schema anywhere is a kind nobody checked.
        raise ChartError(f"{name}: {exc.message}") from None


def validate_all(objects: list[dict[str, Any]]) -> int:
    """Validate each object for the oldest and the newest Kubernetes; the number of objects."""
    for obj in objects:
        for version in (OLDEST_KUBERNETES, newest_kubernetes()):
            validate(obj, version)
    return len(objects)


def main() -> int:
    if helm_binary() is None:
        print("helm is not installed: run infra/helm/install-helm.sh", file=sys.stderr)
        return 1
    start = time.monotonic()
    print(
        f"== {helm('version', '--template', 'helm {{.Version}}')}; kubernetes-validate "
        f"{kubernetes_validate.__version__} (Kubernetes {OLDEST_KUBERNETES} and {newest_kubernetes()})"
    )
    total = 0
    try:
        for label, values in VALUES.items():
            lint(values)
            objects = render(values)
            total += validate_all(objects)
            kinds = Counter(o["kind"] for o in objects)
            print(
                f"{label}: lint ok; {len(objects)} objects valid: "
                + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
            )
    except ChartError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"== {total} rendered objects valid ({time.monotonic() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
