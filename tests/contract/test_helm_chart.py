"""What the Helm chart renders, beyond the schema check of `make helm-check` (kubeconform): the
rules it ships are the alert file's, the migration runs first with the owner role, every container
is locked down and probed, and no values make more workers than partitions."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.tools import HELM, PROMTOOL, REPO_ROOT, require

CHART = REPO_ROOT / "deploy" / "helm" / "tasksage"
VALUES = ["values.yaml", "values-staging.yaml", "values-production.yaml"]


def render(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(require(HELM)), "template", "tasksage", str(CHART), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@functools.cache  # one render per set of values, shared by the tests that read it
def objects(*args: str) -> dict[str, dict[str, Any]]:
    done = render(*args)
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}


def pod_specs(rendered: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        k: o["spec"]["template"]["spec"] for k, o in rendered.items() if o["kind"] in ("Deployment", "Job")
    }


@pytest.mark.parametrize("values", VALUES)
def test_every_container_runs_as_non_root_on_a_read_only_root_filesystem(values: str) -> None:
    for name, spec in pod_specs(objects("-f", str(CHART / values))).items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert {"/tmp", "/var/lib/tasksage"} <= mounts, f"{name}: no writable /tmp and data dir"


@pytest.mark.parametrize("values", VALUES)
def test_long_running_containers_are_probed_on_healthz_and_readyz(values: str) -> None:
    rendered = objects("-f", str(CHART / values))
    for name, spec in pod_specs(rendered).items():
        if rendered[name]["kind"] != "Deployment":
            continue
        (container,) = spec["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name


def test_the_migration_is_a_pre_install_and_pre_upgrade_hook_with_the_owner_role() -> None:
    rendered = objects()
    job = rendered["Job/tasksage-migrate"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["migrate"]

    def database_key(c: dict[str, Any]) -> str:
        (url,) = [e for e in c["env"] if e["name"] == "DATABASE_URL"]
        return str(url["valueFrom"]["secretKeyRef"]["key"])

    assert database_key(container) == "owner-url"
    for name in ("Deployment/tasksage-worker", "Deployment/tasksage-api"):
        (c,) = rendered[name]["spec"]["template"]["spec"]["containers"]
        assert database_key(c) == "worker-url", name
    # The hook runs before the release's ConfigMap exists, so it must not mount it.
    volumes = job["spec"]["template"]["spec"]["volumes"]
    assert all("configMap" not in v for v in volumes)


def test_the_prometheus_rule_is_the_alert_file_and_promtool_accepts_it(tmp_path: Path) -> None:
    rendered = objects("-f", str(CHART / "values-production.yaml"))
    spec = rendered["PrometheusRule/tasksage"]["spec"]
    assert spec == yaml.safe_load((REPO_ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(spec))
    checked = subprocess.run(
        [str(require(PROMTOOL)), "check", "rules", str(tmp_path / "rules.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_service_monitor_names_the_worker_job_the_alerts_expect() -> None:
    rendered = objects("-f", str(CHART / "values-staging.yaml"))
    monitor = rendered["ServiceMonitor/tasksage"]["spec"]
    worker_service = rendered["Service/tasksage-worker-metrics"]["metadata"]["labels"]
    assert worker_service[monitor["jobLabel"]] == "tasksage"  # up{job="tasksage"} in alerts.yml


@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        (["--set", "worker.replicas=5", "--set", "kafka.topicPartitions=4"], "worker.replicas (5) is above"),
        (
            [
                "--set",
                "worker.keda.enabled=true",
                "--set",
                "worker.keda.maxReplicas=6",
                "--set",
                "kafka.topicPartitions=4",
            ],
            "worker.keda.maxReplicas (6) is above",
        ),
        (["--set", "settings.OPENAI_API_KEY=sk-x"], "only TASKSAGE_* settings belong here"),
    ],
)
def test_values_that_would_misconfigure_the_workers_are_refused(args: list[str], refusal: str) -> None:
    done = render(*args)
    assert done.returncode != 0
    assert refusal in done.stderr


def test_keda_scales_up_to_the_partition_count_and_owns_the_replica_count() -> None:
    rendered = objects("--set", "worker.keda.enabled=true", "--set", "kafka.topicPartitions=6")
    scaled = rendered["ScaledObject/tasksage-worker"]["spec"]
    assert scaled["maxReplicaCount"] == 6
    assert scaled["scaleTargetRef"]["name"] == "tasksage-worker"
    assert "replicas" not in rendered["Deployment/tasksage-worker"]["spec"]
