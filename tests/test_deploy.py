"""The deployment files users apply: rendered, schema-checked and cross-checked against the gateway itself.

- Kubernetes: the Kustomize base and the with-redis overlay are rendered offline by a small renderer
  (resources, components, configMapGenerator, labels, strategic-merge patches: the features the files
  use, and a render that meets any other feature fails) and every object is validated, strictly (no
  unknown fields), against the Kubernetes OpenAPI schemas bundled by `kubernetes-validate`, for the
  oldest and newest versions it ships that we support. The config in the ConfigMap passes the
  gateway's own `validate`.
- Dockerfile, compose.yaml and haproxy.cfg: parsed and checked for what the deployment promises;
  haproxy.cfg also by HAProxy itself (`haproxy -c`).
- Grafana: every series the dashboard queries is in a real gateway's /metrics after real calls.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import kubernetes_validate
import pytest
import yaml
from mcp.shared.exceptions import MCPError

from mcp_anything.cli import main as cli
from tests.support.debian import debian_program
from tests.support.gateway import GatewayFactory, echo_config
from tests.support.mcp import mcp_client
from tests.support.metrics import scrape

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
BASE = KUBERNETES / "base"
WITH_REDIS = KUBERNETES / "overlays" / "with-redis"
SCHEMA_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
# Values the Secret supplies in a real cluster; any value of the right form validates the config.
SECRET_ENV = {
    "MCP_API_KEY": "test-api-key",
    "PETSTORE_API_KEY": "test-upstream-key",
    "MCP_SESSION_KEY": "a-test-session-key-of-at-least-32-bytes",
}


# --- a Kustomize renderer for the features these files use -------------------------------------------------


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _merge(target: Any, patch: Any) -> Any:
    """Strategic merge as Kustomize applies it to these patches: maps merge, lists of named maps merge by name."""
    if isinstance(target, dict) and isinstance(patch, dict):
        merged = dict(target)
        for key, value in patch.items():
            merged[key] = _merge(target[key], value) if key in target else value
        return merged
    if isinstance(target, list) and isinstance(patch, list) and all(isinstance(i, dict) and "name" in i for i in patch):
        merged_list = list(target)
        for item in patch:
            index = next((i for i, old in enumerate(merged_list) if old.get("name") == item["name"]), None)
            if index is None:
                merged_list.append(item)
            else:
                merged_list[index] = _merge(merged_list[index], item)
        return merged_list
    return patch


KNOWN_FIELDS = {"apiVersion", "kind", "resources", "components", "configMapGenerator", "labels", "patches"}


def render(directory: Path, accumulated: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The objects `directory` makes; a Component is rendered onto its includer's objects (`accumulated`)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KNOWN_FIELDS
    assert not unknown, f"{directory}: the test renderer does not implement {unknown}"
    assert (kustomization["kind"] == "Component") == (accumulated is not None), directory
    objects = [] if accumulated is None else accumulated
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        objects += render(path) if path.is_dir() else _documents(path)
    for generator in kustomization.get("configMapGenerator", []):
        # A hashed name would change with every edit; the base keeps one name so replicas reload in place.
        assert generator.get("options", {}).get("disableNameSuffixHash") is True, generator
        data = {Path(f).name: (directory / f).read_text() for f in generator["files"]}
        metadata = {"name": generator["name"]}
        objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data})
    for component in kustomization.get("components", []):
        objects = render((directory / component).resolve(), objects)
    for patch in kustomization.get("patches", []):
        for change in _documents(directory / patch["path"]):
            key = (change["kind"], change["metadata"]["name"])
            matches = [i for i, o in enumerate(objects) if (o["kind"], o["metadata"]["name"]) == key]
            assert len(matches) == 1, f"{patch['path']} matches {len(matches)} objects"
            objects[matches[0]] = _merge(objects[matches[0]], change)
    for labels in kustomization.get("labels", []):
        for obj in objects:
            obj["metadata"] = {**obj["metadata"], "labels": {**obj["metadata"].get("labels", {}), **labels["pairs"]}}
    return copy.deepcopy(objects)


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def gateway_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = find(objects, "Deployment", "mcp-anything")["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("directory", [BASE, WITH_REDIS], ids=["base", "with-redis"])
@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_every_rendered_object_matches_the_kubernetes_schemas(directory: Path, version: str) -> None:
    objects = render(directory)
    assert {o["kind"] for o in objects} >= {
        "Deployment",
        "Service",
        "ConfigMap",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    }
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_deployment_probes_drains_and_runs_unprivileged() -> None:
    objects = render(BASE)
    deployment = find(objects, "Deployment", "mcp-anything")
    pod = deployment["spec"]["template"]["spec"]
    container = gateway_container(objects)
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    drain = container["lifecycle"]["preStop"]["exec"]["command"]
    assert drain[0] == "sleep" and int(drain[1]) > 0
    config = yaml.safe_load(find(objects, "ConfigMap", "mcp-anything-config")["data"]["config.yaml"])
    shutdown = float(config["server"]["shutdown_timeout"].rstrip("s"))
    assert pod["terminationGracePeriodSeconds"] > int(drain[1]) + shutdown
    assert config["server"]["port"] == port and config["server"]["host"] == "0.0.0.0"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    # The config and its spec come from the ConfigMap, mounted whole (a subPath mount would never update).
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["config"]["mountPath"] == "/etc/mcp-anything" and "subPath" not in mounts["config"]
    assert volumes["config"]["configMap"]["name"] == "mcp-anything-config"
    assert container["args"][:3] == ["serve", "--config", "/etc/mcp-anything/config.yaml"]
    # Secrets only by reference: no literal value of a secret-looking variable in the manifests.
    assert container["envFrom"] == [{"secretRef": {"name": "mcp-anything"}}]
    for variable in container["env"]:
        assert not re.search(r"KEY|TOKEN|SECRET|PASSWORD", variable["name"]) or "valueFrom" in variable, variable


def test_service_pdb_and_autoscaler_select_the_deployment() -> None:
    objects = render(BASE)
    deployment = find(objects, "Deployment", "mcp-anything")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    service = find(objects, "Service", "mcp-anything")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert find(objects, "PodDisruptionBudget", "mcp-anything")["spec"]["selector"]["matchLabels"].items() <= (
        pod_labels.items()
    )
    hpa = find(objects, "HorizontalPodAutoscaler", "mcp-anything")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "mcp-anything"}
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    assert all(o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "mcp-anything" for o in objects)


def test_the_redis_overlay_points_every_replica_at_its_redis() -> None:
    base, overlay = render(BASE), render(WITH_REDIS)
    assert {(o["kind"], o["metadata"]["name"]) for o in overlay} - {
        (o["kind"], o["metadata"]["name"]) for o in base
    } == {
        ("Deployment", "mcp-anything-redis"),
        ("Service", "mcp-anything-redis"),
    }
    env = {e["name"]: e["value"] for e in gateway_container(overlay)["env"]}
    service = find(overlay, "Service", "mcp-anything-redis")
    port = service["spec"]["ports"][0]["port"]
    assert env["MCP_RATE_LIMIT_STORAGE"].startswith(f"redis://{service['metadata']['name']}:{port}/")
    # The patch merged into the base's container: nothing else of it was lost.
    assert gateway_container(overlay)["readinessProbe"] == gateway_container(base)["readinessProbe"]
    assert {e["name"]: e["value"] for e in gateway_container(base)["env"]}["MCP_RATE_LIMIT_STORAGE"] == "memory://"


@pytest.mark.parametrize("directory", [BASE, WITH_REDIS], ids=["base", "with-redis"])
def test_the_configmap_config_passes_the_gateways_validate(
    directory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    objects = render(directory)
    for name, text in find(objects, "ConfigMap", "mcp-anything-config")["data"].items():
        (tmp_path / name).write_text(text)
    for variable in gateway_container(objects)["env"]:
        monkeypatch.setenv(variable["name"], variable["value"])
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    assert cli(["validate", "--config", str(tmp_path / "config.yaml")]) == 0, capsys.readouterr().err
    assert "config OK" in capsys.readouterr().out
    # Each secret the config needs has no default: an unset one fails loudly instead of running without it.
    monkeypatch.delenv("MCP_API_KEY")
    assert cli(["validate", "--config", str(tmp_path / "config.yaml")]) == 2
    assert "MCP_API_KEY is not set" in capsys.readouterr().err


# --- Dockerfile ---------------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_image_runs_as_non_root_with_a_healthcheck_and_no_baked_secrets() -> None:
    instructions = dockerfile_instructions()
    stages = [i for i, (op, _) in enumerate(instructions) if op == "FROM"]
    final = instructions[stages[-1] :]
    assert re.match(r"python:3\.11-slim", final[0][1])
    users = [args for op, args in final if op == "USER"]
    assert users, "the final stage sets USER"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0, "a numeric non-root user, so runAsNonRoot can verify it"
    (healthcheck,) = [args for op, args in final if op == "HEALTHCHECK"]
    port = yaml.safe_load((BASE / "config" / "config.yaml").read_text())["server"]["port"]
    assert f"http://127.0.0.1:{port}/healthz" in healthcheck and "CMD" in healthcheck
    assert [args for op, args in final if op == "EXPOSE"] == [str(port)]
    command = json.loads([args for op, args in final if op == "CMD"][-1])
    assert command[:3] == ["serve", "--config", "/etc/mcp-anything/config.yaml"]
    assert json.loads([args for op, args in final if op == "ENTRYPOINT"][-1]) == ["mcp-anything"]
    # A read-only root filesystem: nothing is written beside the code at run time.
    env = " ".join(args for op, args in final if op == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    for op, args in instructions:
        if op in ("ENV", "ARG"):
            assert not re.search(r"(KEY|TOKEN|SECRET|PASSWORD)\w*=", args), (
                f"{op} {args}: secrets come from the environment"
            )
        assert op != "ADD", "COPY only: nothing fetched at build time"


# --- compose.yaml and haproxy.cfg ---------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def haproxy_sections() -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for raw in (DEPLOY / "haproxy.cfg").read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line:
            continue
        if not raw[0].isspace():
            current = sections.setdefault(line, [])
        else:
            current.append(" ".join(line.split()))
    return sections


def test_compose_runs_three_read_only_replicas_sharing_redis_and_the_config() -> None:
    services = compose()["services"]
    gateways = {name: s for name, s in services.items() if name.startswith("gateway-")}
    assert len(gateways) == 3
    for service in gateways.values():
        assert service["read_only"] is True
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        (volume,) = service["volumes"]
        source, target, mode = volume.split(":")
        assert (target, mode) == ("/etc/mcp-anything", "ro") and (DEPLOY / source / "config.yaml").is_file()
        env = service["environment"]
        assert env["MCP_RATE_LIMIT_STORAGE"].startswith("redis://redis:6379/")
        for name in SECRET_ENV:
            assert re.fullmatch(r"\$\{" + name + r":\?[^}]+\}", env[name]), f"{name} must come from the caller's env"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "healthcheck" in services["redis"]
    haproxy = services["haproxy"]
    assert "./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in haproxy["volumes"]
    assert set(haproxy["depends_on"]) == set(gateways)


def test_haproxy_balances_round_robin_over_every_replica_checking_readyz() -> None:
    sections = haproxy_sections()
    frontend = sections["frontend mcp"]
    backend = sections["backend gateways"]
    assert "default_backend gateways" in frontend
    (bind,) = [line for line in frontend if line.startswith("bind ")]
    published = compose()["services"]["haproxy"]["ports"][0]
    assert published.endswith(":" + bind.rsplit(":", 1)[1])
    assert "balance roundrobin" in backend
    assert "option httpchk" in backend and "http-check send meth GET uri /readyz" in backend
    default_server = next(line for line in backend if line.startswith("default-server "))
    assert " check" in f" {default_server}"
    servers = [line.split() for line in backend if line.startswith("server ")]
    gateways = {name for name in compose()["services"] if name.startswith("gateway-")}
    config = yaml.safe_load((BASE / "config" / "config.yaml").read_text())
    assert {address for _, _, address, *_ in servers} == {f"{name}:{config['server']['port']}" for name in gateways}
    assert "http-request del-header x-mcp-authorized" in frontend


def test_haproxy_itself_accepts_the_config() -> None:
    checked = subprocess.run(
        [debian_program("haproxy"), "-c", "-f", str(DEPLOY / "haproxy.cfg")], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The replicas' names resolve only inside compose's network; anything else would be a real mistake.
    problems = [
        line
        for line in (checked.stdout + checked.stderr).splitlines()
        if "[WARNING]" in line or "[ALERT]" in line
        if "could not resolve address" not in line
    ]
    assert not problems, problems


# --- Grafana ------------------------------------------------------------------------------------------------

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}


def dashboard_queries() -> Iterator[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboard.json").read_text())
    panels = [p for row in dashboard["panels"] for p in [row, *row.get("panels", [])]]
    for panel in panels:
        for target in panel.get("targets", []):
            yield target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            yield variable["definition"]


def series_in(expr: str) -> dict[str, set[str]]:
    """{metric name: label names used with it (its matchers, and the `by`/`on` labels of the expression)}."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    clause = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)"
    grouping = {label.strip() for labels in re.findall(clause, expr) for label in labels.split(",") if label.strip()}
    found: dict[str, set[str]] = {}
    for name, label in re.findall(r"label_values\(\s*([A-Za-z_:][\w:]*)\s*,\s*(\w+)\s*\)", expr):
        found.setdefault(name, set()).add(label)
    expr = re.sub(r"label_values\([^)]*\)|\[[^\]]*\]", "", re.sub(clause, "", expr))
    for match in re.finditer(r"([A-Za-z_:][\w:]*)\s*(\{[^}]*\})?", expr):
        name, matchers = match.group(1), match.group(2) or ""
        if name in PROMQL_WORDS or expr[match.end() :].lstrip().startswith("("):
            continue
        found.setdefault(name, set()).update(re.findall(r"(\w+)\s*[=!~]", matchers))
    for labels in found.values():
        labels |= grouping - {"le", "instance"}
    return found


def test_the_query_reader_finds_metrics_and_labels() -> None:
    assert series_in('sum by (group, tool) (rate(a_total{group=~"$group", outcome="x"}[$__rate_interval]))') == {
        "a_total": {"group", "tool", "outcome"}
    }
    assert series_in("histogram_quantile(0.99, sum by (le) (rate(b_bucket[5m])))") == {"b_bucket": set()}
    assert series_in("label_values(c_total, group)") == {"c_total": {"group"}}
    assert series_in("max by (u) (d) == 1") == {"d": {"u"}}


@pytest.mark.slow
@pytest.mark.anyio
async def test_every_series_the_dashboard_queries_is_exported(gateway: GatewayFactory, upstream_url: str) -> None:
    raw = echo_config(upstream_url)
    raw["groups"][0]["inbound_auth"] = {"strategy": "apikey", "apikey": {"values": {"alice": "${KEY}"}}}
    raw["groups"][0]["rate_limits"] = [{"per": "subject", "limit": "3/minute"}]
    raw["groups"][0]["authorization"] = {
        "default": "allow",
        "rules": [{"effect": "deny", "when": "true", "tools": ["echo_delete_*"]}],
    }
    with gateway(raw, env={"KEY": "dashboard-key"}) as url:
        async with mcp_client(url + "/mcp", headers={"X-API-Key": "dashboard-key"}) as client:
            assert not (await client.call_tool("echo_get_item", {"itemId": "1"})).is_error
            assert (await client.call_tool("echo_get_status", {"code": 503})).is_error
            assert (await client.call_tool("echo_get_item", {})).is_error
            assert (await client.call_tool("echo_get_item", {"itemId": "2"})).is_error  # over the limit
            with pytest.raises(MCPError, match="Unknown tool"):  # refused by authorization, like an unknown tool
                await client.call_tool("echo_delete_item", {"itemId": "2"})
        async with httpx2.AsyncClient() as http:
            refused = await http.post(url + "/mcp", json={}, headers={"X-API-Key": "wrong"})
        assert refused.status_code == 401
        exported = await scrape(url)
    labels_of: dict[str, set[str]] = {}
    for sample in exported.samples:
        labels_of.setdefault(sample.name, set()).update(sample.labels)
    queried: dict[str, set[str]] = {}
    for expr in dashboard_queries():
        for name, labels in series_in(expr).items():
            queried.setdefault(name, set()).update(labels)
    assert {
        "mcp_anything_tool_calls_total",
        "mcp_anything_auth_failures_total",
        "mcp_anything_authz_refusals_total",
        "mcp_anything_upstream_circuit",
    } <= queried.keys()
    missing = sorted(queried.keys() - labels_of.keys())
    assert not missing, f"the dashboard queries series the gateway does not export: {missing}"
    for name, labels in queried.items():
        assert labels <= labels_of[name], f"{name} has no label {labels - labels_of[name]}"
    outcomes = {s.labels["outcome"] for s in exported.samples if s.name == "mcp_anything_tool_calls_total"}
    assert {"ok", "error", "invalid_arguments", "rate_limited"} <= outcomes, "every outcome the panels filter on"


def test_docker_commands_in_comments_name_files_that_exist() -> None:
    """The usage lines at the top of each file are what users copy; the paths they name must exist."""
    root = DEPLOY.parent
    for path in (DEPLOY / "Dockerfile", DEPLOY / "compose.yaml", BASE / "kustomization.yaml"):
        for line in path.read_text().splitlines():
            if line.startswith("#") and ("-f deploy/" in line or "apply -k" in line):
                for word in shlex.split(line.lstrip("# "), comments=False):
                    if word.startswith("deploy/"):
                        assert (root / word).exists(), f"{path.name}: {word}"
