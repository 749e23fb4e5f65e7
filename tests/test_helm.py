"""Kubernetes: what Rasa's Helm charts make of deploy/helm/*-values.yaml, and deploy/helm/af-app.yaml.

Pinned charts (https://helm.rasa.com, source RasaHQ/helm-charts, all three marked deprecated
upstream; read at commit 94fba4b4a18b2ca79b1e90783f244c3f4901273e, tag rasa-1.17.8):

* ``rasa`` 1.17.8 (app 3.2.6) with its dependency ``rasa-common`` 1.0.2 (Chart.lock),
* ``rasa-action-server`` 1.0.9.

What those templates do, verified by reading them and by rendering them with Helm's own template
engine (the Helm v4.2.3 SDK in PyPI's ``helm-python-sdk``); the model below (``rasa_chart``) does
the same and ``test_the_model_agrees_with_helm`` holds it to a real render when one is available:

1. ``templates/_containers-volumes.yaml`` 4-13, 45-54: unless ``applicationSettings.rasaX.
   useConfigEndpoint``, the pod always gets the ConfigMap ``<fullname>`` mounted with ``subPath``,
   read-only, over ``/app/endpoints.yml`` and ``/app/credentials.yml``. Our image's WORKDIR is /app
   and scripts/rasa_server.py passes ``credentials="credentials.yml"``: so the chart's ConfigMap,
   not our file, decides which input channels Rasa opens.
2. ``templates/config-map.yaml`` 9-18: ``credentials`` is ``toYaml`` of
   ``applicationSettings.credentials.additionalChannelCredentials`` when ``credentials.enabled``
   (default true, default ``{}``), plus ``rasa: {url: <rasaX.url>/api}`` when Rasa X is on. With
   our old values that was an EMPTY file: Rasa 3.6 then opens no channel at all (no chat); with the
   chart README's ``rest:`` it would open Rasa's stock RestInput: no CPR masking, no identity check.
   Lines 19-66: ``endpoints`` gets models / tracker_store (``${DB_PASSWORD}`` ...) / lock_store /
   event_broker / action_endpoint for each one enabled; all off = an empty file, which our launcher
   never reads (scripts/rasa_replica.py writes var/run/endpoints-<port>.yml and passes that).
3. ``templates/deployment.yaml`` 71-91: ``args`` = ``.Values.args`` if non-empty, else the chart's
   own: ``run [--enable-api] --port <port> --cors <cors> --jwt-method HS256 --jwt-secret
   $(JWT_SECRET) --auth-token $(RASA_TOKEN)`` + ``extraArgs`` (+ ``--debug``). Lines 92-95:
   ``command`` = ``.Values.command`` if non-empty. So our command survives, and ``args`` must be
   non-empty, or our launcher gets the chart's arguments and a token on its command line.
4. ``templates/_containers-env.yaml`` 24-49: always RASA_TELEMETRY_ENABLED (from
   ``telemetry.enabled``), MPLCONFIGDIR, TF_CPP_MIN_LOG_LEVEL, RASA_TOKEN and JWT_SECRET (from the
   chart's own Secret, ``templates/secret.yaml``: ``applicationSettings.token`` default
   "rasaToken"), then ``extraEnv``. A name in both appears twice in the pod.
5. ``templates/helpers/_helpers.tpl`` 81-98 + ``_load-initial-model.yaml``: a non-empty
   ``initialModel`` (default: a demo model on GitHub) adds an init container that wget's it and an
   emptyDir over /app/models, which hides the model in our image.
6. ``templates/ingress.yaml``: one host, ``extraPaths`` (toYaml'd into the path list) and then
   always ``ingress.path`` (default "/") to the Rasa service, i.e. Rasa's whole HTTP API.
   ``values.schema.json`` types ``extraPaths`` as an object, so a list is refused and a map renders
   no valid Ingress: extraPaths is unusable, and the chart can route exactly one path.
7. ``templates/hpa.yaml`` -> rasa-common ``_hpa.tpl``: ``autoscaling/v2beta1``, which Kubernetes
   no longer serves since 1.25.
8. ``nginx.enabled`` (default true) adds an nginx sidecar in front of everything;
   ``postgresql.install`` (default true) installs a PostgreSQL with password "password".
9. rasa-action-server 1.0.9: ``args``/``command`` only if non-empty, env = ``extraEnv`` only,
   ``service.port`` default 80, fullname ``<release>-rasa-action-server`` unless overridden, and
   its schema wants probe ports as strings (``port: 5055`` fails ``helm install``).
   ``templates/deployment.yaml``: ``podLabels``, ``volumes``, ``volumeMounts``, ``nodeSelector``,
   ``affinity`` and ``strategy`` (default RollingUpdate, maxSurge 1, maxUnavailable 0) go into the
   pod/Deployment as written.

Run the optional real checks (skipped otherwise, with the reason):

* ``AF_HELM_CHART_RASA`` / ``AF_HELM_CHART_ACTIONS``: the charts as directories or .tgz
  (``helm pull rasa/rasa --version 1.17.8``), rendered with ``helm template`` when ``helm`` is on
  PATH, else with ``AF_HELM_PYTHON``: a Python that has ``helm-python-sdk`` installed.
* ``kubernetes-validate`` on PATH (PyPI ``kubernetes-validate``): every manifest, ours and the
  rendered ones, against the Kubernetes 1.25 and 1.37 schemas, strict.
"""
from __future__ import annotations

import copy
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
HELM_DIR = ROOT / "deploy" / "helm"
RASA_VALUES_FILE = HELM_DIR / "rasa-values.yaml"
ACTIONS_VALUES_FILE = HELM_DIR / "actions-values.yaml"
APP_FILE = HELM_DIR / "af-app.yaml"

RASA_CHART_VERSION = "1.17.8"
ACTIONS_CHART_VERSION = "1.0.9"
KUBERNETES_VERSIONS = ("1.25.0", "1.37.0")  # the oldest and newest schemas kubernetes-validate 1.37 ships

SECRET_NAME = "af-secrets"
# The label that tied the pods sharing the old SQLite volume af-shared to one node: gone for good.
SHARED_LABEL = "af-assistenten/shared-volume"
# The processes that open the outbox and the hand-over queue (af_core/outbox.py, af_core/handoff_store.py).
# The Rasa server opens neither (channels/ and scripts/rasa_*.py import none of them); its
# AF_TRACKER_STORE/AF_POSTGRES_* settings are the tracker store's, which the stores must share.
STORE_PROCESSES = ("actions", "web", "outbox")
# The SQLite files of the one-host set-up; with AF_TRACKER_STORE=postgres they are not used.
SQLITE_STORE_VARIABLES = ("AF_OUTBOX_PATH", "AF_HANDOFF_DB_PATH")
# The outbox worker's health check (docker-compose.yml's too): exit 1 when its database cannot be reached.
OUTBOX_CHECK = ["python", "-m", "af_core.outbox", "--check"]

# The defaults of rasa 1.17.8's values.yaml that the templates above decide on.
RASA_CHART_DEFAULTS: Dict[str, Any] = {
    "fullnameOverride": "",
    "nameOverride": "",
    "registry": "docker.io/rasa",
    "image": {"name": "rasa", "tag": "3.2.6", "repository": ""},
    "applicationSettings": {
        "initialModel": "https://github.com/RasaHQ/rasa-x-demo/blob/master/models/model.tar.gz?raw=true",
        "trainInitialModel": False,
        "port": 5005,
        "token": "rasaToken",
        "cors": "*",
        "enableAPI": True,
        "debugMode": False,
        "credentials": {"enabled": True, "additionalChannelCredentials": {}},
        "telemetry": {"enabled": True},
        "endpoints": {
            "models": {"enabled": False, "useRasaXasModelServer": {"enabled": False}},
            "trackerStore": {"enabled": True},
            "lockStore": {"enabled": False},
            "eventBroker": {"enabled": False},
            "additionalEndpoints": {},
        },
        "rasaX": {"enabled": False, "url": "", "useConfigEndpoint": False},
    },
    "args": [],
    "extraArgs": [],
    "command": [],
    "extraEnv": [],
    "service": {"type": "ClusterIP", "port": 5005},
    "ingress": {"enabled": False, "path": "/", "pathType": "ImplementationSpecific", "extraPaths": {},
                "annotations": {}},
    "autoscaling": {"enabled": False},
    "nginx": {"enabled": True},
    "postgresql": {"install": True},
    "redis": {"install": False},
    "rabbitmq": {"install": False},
    "rasa-action-server": {"install": False, "external": {"enabled": False, "url": ""}},
    "duckling": {"install": False, "external": {"enabled": False, "url": ""}},
    "podSecurityContext": {},
    "securityContext": {},
    "volumes": [],
    "volumeMounts": [],
    "initContainers": [],
    "extraContainers": [],
}

ACTIONS_CHART_DEFAULTS: Dict[str, Any] = {
    "fullnameOverride": "",
    "nameOverride": "",
    "registry": "docker.io/rasa",
    "image": {"name": "rasa-x-demo", "tag": "0.40.0", "repository": ""},
    "applicationSettings": {"port": 5055},
    "args": [],
    "command": [],
    "extraEnv": [],
    "service": {"type": "ClusterIP", "port": 80},
    "ingress": {"enabled": False},
    "autoscaling": {"enabled": False},
    "podSecurityContext": {},
    "securityContext": {},
    "podLabels": {},
    "nodeSelector": {},
    "affinity": {},
    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
    "volumes": [],
    "volumeMounts": [],
}

# Env variables whose value is a secret: only ever from the Secret, never a literal.
SECRET_ENV_RE = re.compile(r"(TOKEN|_KEY|SECRET|PASSWORD)$")
# Parts of a container command line that must never appear (a token in `ps`, /proc/*/cmdline).
TOKEN_ARG_RE = re.compile(r"--auth-token|--jwt-secret|\$\((RASA_TOKEN|JWT_SECRET|RASA_API_TOKEN)\)|token", re.I)
SNIPPET_ANNOTATION_RE = re.compile(r"snippet", re.I)

# Paths of Rasa's HTTP API (trackers, events, model replacement): never routed publicly.
RASA_API_PATHS = ("/status", "/version", "/model", "/model/parse", "/conversations/abc/tracker",
                  "/conversations/abc/tracker/events", "/conversations/abc/messages", "/domain")


# --------------------------------------------------------------------------- helpers

def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _load_all(path: Path) -> List[Dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def helm_merge(defaults: Any, override: Any) -> Any:
    """Helm's coalescing of values: maps merge key by key, anything else (lists too) is replaced,
    and null removes a default."""
    if isinstance(defaults, dict) and isinstance(override, dict):
        merged = copy.deepcopy(defaults)
        for key, value in override.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = helm_merge(merged[key], value)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def _fullname(values: Dict[str, Any], release: str, chart: str) -> str:
    """rasa-common ``names.fullname``."""
    if values.get("fullnameOverride"):
        return values["fullnameOverride"][:63].rstrip("-")
    name = values.get("nameOverride") or chart
    return release[:63].rstrip("-") if name in release else f"{release}-{name}"[:63].rstrip("-")


def _image(values: Dict[str, Any]) -> str:
    """rasa-common ``images.image``."""
    image = values["image"]
    if image.get("repository"):
        return f"{image['repository']}:{image['tag']}"
    return f"{values['registry']}/{image['name']}:{image['tag']}"


def rasa_chart(user_values: Dict[str, Any], release: str = "af-rasa") -> Dict[str, Any]:
    """What rasa 1.17.8 renders for these values, as far as it matters here (docstring 1-8)."""
    v = helm_merge(RASA_CHART_DEFAULTS, user_values)
    app = v["applicationSettings"]
    rasa_x = app["rasaX"]
    config_endpoint = bool(rasa_x.get("useConfigEndpoint"))
    endpoints = app["endpoints"]

    credentials: Optional[Dict[str, Any]] = None
    endpoints_file: Optional[Dict[str, Any]] = None
    if not config_endpoint:
        credentials = {}
        if app["credentials"].get("enabled"):
            credentials.update(copy.deepcopy(app["credentials"].get("additionalChannelCredentials") or {}))
        if rasa_x.get("enabled") and rasa_x.get("url"):
            credentials["rasa"] = {"url": f"{rasa_x['url']}/api"}
        endpoints_file = {}
        if endpoints["models"].get("enabled") and not endpoints["models"]["useRasaXasModelServer"].get("enabled"):
            endpoints_file["models"] = "..."
        for key, name in (("trackerStore", "tracker_store"), ("lockStore", "lock_store"),
                          ("eventBroker", "event_broker")):
            if endpoints[key].get("enabled"):
                endpoints_file[name] = "..."
        action = v["rasa-action-server"]
        if action.get("install") or (action["external"].get("enabled") and action["external"].get("url")):
            endpoints_file["action_endpoint"] = {"url": "${ACTION_SERVER_URL}"}
        endpoints_file.update(copy.deepcopy(endpoints.get("additionalEndpoints") or {}))

    if v["args"]:
        args = list(v["args"])
    else:
        args = (["x", "--no-prompt", "--production"] if rasa_x.get("enabled")
                else ["run"] + (["--enable-api"] if app.get("enableAPI") else []))
        args += ["--port", str(app["port"]), "--cors", str(app.get("cors") or ""), "--jwt-method", "HS256",
                 "--jwt-secret", "$(JWT_SECRET)", "--auth-token", "$(RASA_TOKEN)"] + list(v["extraArgs"])
        if app.get("debugMode"):
            args.append("--debug")

    models_enabled = endpoints["models"].get("enabled")
    download = (not config_endpoint and not models_enabled and bool(app.get("initialModel"))
                and not app.get("trainInitialModel"))
    train = not config_endpoint and not models_enabled and bool(app.get("trainInitialModel"))
    init_containers = [c.get("name") for c in v["initContainers"]]
    mounts = []
    if download:
        init_containers.append("download-initial-model")
    elif train:
        init_containers.append("train-initial-model")
    if download or train:
        mounts.append("/app/models")
    mounts.append("/.config")
    if not config_endpoint:
        mounts += ["/app/endpoints.yml", "/app/credentials.yml"]
    mounts += [m["mountPath"] for m in v["volumeMounts"]]

    env = ["RASA_TELEMETRY_ENABLED", "MPLCONFIGDIR", "TF_CPP_MIN_LOG_LEVEL"]
    if rasa_x.get("enabled"):
        env.append("RASA_X_TOKEN")
    env += ["RASA_TOKEN", "JWT_SECRET"] + [item["name"] for item in v["extraEnv"]]

    ingress_paths: Optional[List[str]] = None
    if v["ingress"].get("enabled"):
        extra = v["ingress"].get("extraPaths") or []
        ingress_paths = [p.get("path") for p in extra] if isinstance(extra, list) else ["<invalid>"]
        ingress_paths.append(v["ingress"].get("path"))
    return {
        "values": v,
        "fullname": _fullname(v, release, "rasa"),
        "image": _image(v),
        "command": list(v["command"]) or None,  # None: the image's CMD
        "args": args,
        "env": env,
        "mounts": mounts,
        "init_containers": init_containers,
        "sidecars": (["nginx"] if v["nginx"].get("enabled") else []) + [c.get("name") for c in v["extraContainers"]],
        "credentials": credentials,        # None: nothing mounted over /app/credentials.yml
        "endpoints": endpoints_file,
        "ingress_paths": ingress_paths,
        "hpa_api": "autoscaling/v2beta1" if v["autoscaling"].get("enabled") else None,
        "service_type": v["service"]["type"],
        "service_port": v["service"]["port"],
        "subcharts": [name for name in ("postgresql", "redis", "rabbitmq", "rasa-action-server", "duckling")
                      if v[name].get("install")],
    }


def actions_chart(user_values: Dict[str, Any], release: str = "af-actions") -> Dict[str, Any]:
    v = helm_merge(ACTIONS_CHART_DEFAULTS, user_values)
    return {
        "values": v,
        "fullname": _fullname(v, release, "rasa-action-server"),
        "image": _image(v),
        "command": list(v["command"]) or None,
        "args": list(v["args"]),
        "env": [item["name"] for item in v["extraEnv"]],
        "service_type": v["service"]["type"],
        "service_port": v["service"]["port"],
        "ingress": bool(v["ingress"].get("enabled")),
        "hpa_api": "autoscaling/v2beta1" if v["autoscaling"].get("enabled") else None,
    }


def our_credentials() -> Dict[str, Any]:
    return _load(ROOT / "credentials.yml")


def dockerfile_uid() -> int:
    match = re.search(r"useradd\b[^\n]*--uid (\d+)", (ROOT / "Dockerfile").read_text(encoding="utf-8"))
    assert match, "Dockerfile: the unprivileged user's uid"
    return int(match.group(1))


def rasa_problems(user_values: Dict[str, Any]) -> List[str]:
    """Everything in the rasa chart's output for these values that would be wrong for us."""
    chart = rasa_chart(user_values)
    v = chart["values"]
    problems: List[str] = []
    wanted = our_credentials()
    if chart["credentials"] is not None and chart["credentials"] != wanted:
        problems.append(f"/app/credentials.yml would be {chart['credentials']!r}, not credentials.yml's {wanted!r}")
    for channel in chart["credentials"] or {}:
        if not channel.startswith("channels."):
            problems.append(f"stock Rasa channel {channel!r} (no CPR masking, no identity check)")
    if chart["endpoints"]:
        problems.append(f"the chart writes endpoints {sorted(chart['endpoints'])} (ours come from rasa_replica.py)")
    if chart["command"] != ["python", "scripts/rasa_replica.py"]:
        problems.append(f"command {chart['command']!r} is not our launcher")
    if not v["args"]:
        problems.append("args is empty: the chart's own `run ... --auth-token $(RASA_TOKEN)` goes to our launcher")
    for arg in chart["args"] + [str(a) for a in v["extraArgs"]]:
        if TOKEN_ARG_RE.search(str(arg)):
            problems.append(f"a token on the command line: {arg!r}")
    if len(chart["args"]) != 1 or not str(chart["args"][0]).startswith("/app/models"):
        problems.append(f"args {chart['args']!r}: our launcher takes one argument, the model (in /app/models)")
    if chart["init_containers"] or "/app/models" in chart["mounts"]:
        problems.append(f"init containers {chart['init_containers']} / a volume over /app/models hide our model")
    if chart["sidecars"]:
        problems.append(f"extra containers in the Rasa pod: {chart['sidecars']}")
    if chart["ingress_paths"] is not None:
        problems.append(f"the chart's Ingress routes {chart['ingress_paths']} to Rasa (its API with '/')")
    for key in v["ingress"].get("annotations") or {}:
        if SNIPPET_ANNOTATION_RE.search(key):
            problems.append(f"nginx snippet annotation {key}")
    if chart["hpa_api"]:
        problems.append("the chart's HorizontalPodAutoscaler is autoscaling/v2beta1 (gone since Kubernetes 1.25)")
    if chart["service_type"] != "ClusterIP":
        problems.append(f"Service type {chart['service_type']}: Rasa reachable from outside the cluster")
    if chart["subcharts"]:
        problems.append(f"the chart would install {chart['subcharts']}")
    if v["applicationSettings"]["rasaX"].get("enabled"):
        problems.append("Rasa X mode")
    if v["applicationSettings"]["telemetry"].get("enabled") is not False:
        problems.append("telemetry on (a closed network: Rasa must not call home)")
    if v["applicationSettings"].get("token") == RASA_CHART_DEFAULTS["applicationSettings"]["token"]:
        problems.append("the chart's public default token 'rasaToken' in its Secret")
    duplicates = sorted({name for name in chart["env"] if chart["env"].count(name) > 1})
    if duplicates:
        problems.append(f"env variables set twice in the pod: {duplicates}")
    problems += pod_security_problems("rasa", v["podSecurityContext"], v["securityContext"])
    problems += env_problems("rasa", v["extraEnv"])
    return problems


def pod_security_problems(name: str, pod: Dict[str, Any], container: Dict[str, Any]) -> List[str]:
    problems = []
    merged = {**(pod or {}), **(container or {})}
    if merged.get("runAsNonRoot") is not True:
        problems.append(f"{name}: runAsNonRoot is not true")
    if merged.get("runAsUser") not in (None, dockerfile_uid()):
        problems.append(f"{name}: runAsUser {merged.get('runAsUser')} is not the image's user {dockerfile_uid()}")
    if (container or {}).get("allowPrivilegeEscalation") is not False:
        problems.append(f"{name}: allowPrivilegeEscalation is not false")
    if "ALL" not in ((container or {}).get("capabilities") or {}).get("drop", []):
        problems.append(f"{name}: capabilities are not all dropped")
    if (container or {}).get("privileged"):
        problems.append(f"{name}: privileged")
    return problems


def env_problems(name: str, env: Iterable[Dict[str, Any]]) -> List[str]:
    problems = []
    for item in env:
        if SECRET_ENV_RE.search(item["name"]):
            ref = (item.get("valueFrom") or {}).get("secretKeyRef") or {}
            if "value" in item or ref.get("name") != SECRET_NAME or ref.get("key") != item["name"]:
                problems.append(f"{name}: {item['name']} must come from Secret {SECRET_NAME} (key {item['name']})")
    names = [item["name"] for item in env]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{name}: {dup} is set twice")
    return problems


def env_dict(env: Iterable[Dict[str, Any]]) -> Dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in env}


# --------------------------------------------------------------------------- our manifests

RASA_VALUES = _load(RASA_VALUES_FILE)
ACTIONS_VALUES = _load(ACTIONS_VALUES_FILE)
APP_DOCS = _load_all(APP_FILE)


def app_object(kind: str, name: str) -> Dict[str, Any]:
    found = [d for d in APP_DOCS if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"af-app.yaml: one {kind} {name}"
    return found[0]


def workloads() -> Dict[str, Dict[str, Any]]:
    """Every long-running process: name -> image, command, env, pod spec bits, from all three files."""
    rasa = rasa_chart(RASA_VALUES)
    actions = actions_chart(ACTIONS_VALUES)
    rv, av = rasa["values"], actions["values"]
    found = {
        "rasa": {"image": rasa["image"], "command": rasa["command"] + rasa["args"],
                 "env": rv["extraEnv"], "labels": {}, "volumes": rv["volumes"], "mounts": rv["volumeMounts"],
                 "affinity": rv.get("affinity") or {}, "node_selector": rv.get("nodeSelector") or {},
                 "node_name": None, "replicas": rv["replicaCount"], "strategy": rv.get("strategy"),
                 "probes": {k: rv.get(k) for k in ("livenessProbe", "readinessProbe")}},
        "actions": {"image": actions["image"], "command": actions["command"] + actions["args"],
                    "env": av["extraEnv"], "labels": av["podLabels"], "volumes": av["volumes"],
                    "mounts": av["volumeMounts"], "affinity": av["affinity"],
                    "node_selector": av["nodeSelector"], "node_name": None,
                    "replicas": av["replicaCount"], "strategy": av["strategy"],
                    "probes": {k: av.get(k) for k in ("livenessProbe", "readinessProbe")}},
    }
    for name in ("af-web", "af-outbox"):
        deployment = app_object("Deployment", name)
        pod = deployment["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        found[name.removeprefix("af-")] = {
            "image": container["image"], "command": container["command"] + container.get("args", []),
            "env": container["env"], "labels": pod["metadata"]["labels"], "volumes": pod["spec"].get("volumes", []),
            "mounts": container.get("volumeMounts", []), "affinity": pod["spec"].get("affinity") or {},
            "node_selector": pod["spec"].get("nodeSelector") or {}, "node_name": pod["spec"].get("nodeName"),
            "replicas": deployment["spec"]["replicas"], "strategy": deployment["spec"].get("strategy"),
            "probes": {k: container.get(k) for k in ("livenessProbe", "readinessProbe")},
            "container": container, "pod": pod["spec"], "deployment": deployment,
        }
    return found


def route(path: str, ingresses: List[Dict[str, Any]], host: str) -> Optional[str]:
    """The Service an Ingress sends ``path`` on ``host`` to, by the Ingress API's rules: Exact, or
    Prefix by whole path elements; the longest matching path wins, Exact before Prefix on a tie.
    None: no rule matches (the controller answers 404)."""
    best: Tuple[Tuple[int, int], Optional[str]] = ((-1, -1), None)
    for ingress in ingresses:
        for rule in ingress["spec"]["rules"]:
            if rule.get("host") != host:
                continue
            for item in rule["http"]["paths"]:
                wanted, kind = item["path"], item["pathType"]
                if kind == "Exact":
                    hit = path.split("?")[0] == wanted
                elif kind == "Prefix":
                    parts = [p for p in wanted.split("/") if p]
                    hit = [p for p in path.split("?")[0].split("/") if p][:len(parts)] == parts
                else:
                    raise AssertionError(f"pathType {kind} is controller-specific: use Exact or Prefix")
                score = (len(wanted.rstrip("/")), 1 if kind == "Exact" else 0)
                if hit and score > best[0]:
                    best = (score, item["backend"]["service"]["name"])
    return best[1]


# --------------------------------------------------------------------------- the rasa chart

def test_the_pinned_chart_versions_are_the_ones_the_files_and_docs_name():
    docs = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    assert f"rasa/rasa --version {RASA_CHART_VERSION}" in docs
    assert f"rasa/rasa-action-server --version {ACTIONS_CHART_VERSION}" in docs
    assert f"version {RASA_CHART_VERSION}" in RASA_VALUES_FILE.read_text(encoding="utf-8")
    assert f"version {ACTIONS_CHART_VERSION}" in ACTIONS_VALUES_FILE.read_text(encoding="utf-8")


def test_what_the_chart_mounts_is_what_our_server_reads():
    """The chart's ConfigMap lands on /app/credentials.yml; our server reads ./credentials.yml from
    WORKDIR /app. Its endpoints file lands on /app/endpoints.yml, which our launcher never reads."""
    assert re.search(r"^WORKDIR /app$", (ROOT / "Dockerfile").read_text(encoding="utf-8"), re.M)
    server = (ROOT / "scripts" / "rasa_server.py").read_text(encoding="utf-8")
    assert 'credentials="credentials.yml"' in server and "endpoints=endpoints_path" in server
    launcher = (ROOT / "scripts" / "rasa_replica.py").read_text(encoding="utf-8")
    assert re.search(r'write_endpoints\(settings, settings\.var_dir / "run" / ', launcher)
    assert "serve(str(model), str(endpoints))" in launcher
    assert "/app/credentials.yml" in rasa_chart(RASA_VALUES)["mounts"]


def test_the_chart_puts_exactly_our_channel_classes_over_credentials_yml():
    chart = rasa_chart(RASA_VALUES)
    assert chart["credentials"] == our_credentials()
    assert sorted(chart["credentials"]) == ["channels.rest_channel.AfRestInput",
                                            "channels.socketio_channel.AfSocketIOInput"]
    # socket.io on its default path, the one Ingress af-chat routes.
    assert chart["credentials"]["channels.socketio_channel.AfSocketIOInput"].get("socketio_path", "/socket.io") \
        == "/socket.io"
    assert chart["endpoints"] == {}


def test_our_rasa_values_have_no_problem():
    assert rasa_problems(RASA_VALUES) == []


def test_the_command_survives_with_the_model_and_no_token_on_the_command_line():
    chart = rasa_chart(RASA_VALUES)
    assert chart["command"] == ["python", "scripts/rasa_replica.py"]
    assert chart["args"] == ["/app/models"]
    assert chart["image"] == "registry.kk.dk/af/af-assistenten:2026.12.1"
    assert chart["fullname"] == "af-rasa" and chart["service_port"] == 5005


BAD_RASA_VALUES = {
    "stock channels (the chart README's example)": {
        "applicationSettings": {"credentials": {"additionalChannelCredentials": {"rest": {}, "socketio": {
            "user_message_evt": "user_uttered", "bot_message_evt": "bot_uttered", "session_persistence": True}}}}},
    "credentials off: an empty file, no channel": {"applicationSettings": {"credentials": {"enabled": False}}},
    "args left empty": {"args": []},
    "our command dropped": {"command": []},
    "a token argument": {"args": ["/app/models", "--auth-token", "$(RASA_TOKEN)"]},
    "the chart's Ingress on /": {"ingress": {"enabled": True}},
    "an nginx snippet": {"ingress": {"annotations": {"nginx.ingress.kubernetes.io/server-snippet": "return 404;"}}},
    "the demo model": {"applicationSettings": {"initialModel": RASA_CHART_DEFAULTS["applicationSettings"]
                                               ["initialModel"]}},
    "the chart's tracker store": {"applicationSettings": {"endpoints": {"trackerStore": {"enabled": True}}}},
    "the v2beta1 autoscaler": {"autoscaling": {"enabled": True}},
    "the nginx sidecar": {"nginx": {"enabled": True}},
    "a LoadBalancer": {"service": {"type": "LoadBalancer"}},
    "the chart's PostgreSQL": {"postgresql": {"install": True}},
    "telemetry twice": {"extraEnv": [{"name": "RASA_TELEMETRY_ENABLED", "value": "false"}]},
    "a literal secret": {"extraEnv": [{"name": "RASA_API_TOKEN", "value": "literal-value"}]},
    "running as root": {"podSecurityContext": {"runAsNonRoot": False, "runAsUser": 0}},
}


@pytest.mark.parametrize("case", sorted(BAD_RASA_VALUES))
def test_each_way_to_break_the_rasa_values_is_caught(case):
    override = BAD_RASA_VALUES[case]
    values = helm_merge(RASA_VALUES, override)
    if "extraEnv" in override:  # a list is replaced by Helm; here we add to ours
        values["extraEnv"] = RASA_VALUES["extraEnv"] + override["extraEnv"]
    assert rasa_problems(values), case


# --------------------------------------------------------------------------- the action-server chart

def test_the_action_server_chart_runs_our_server_on_the_service_rasa_calls():
    chart = actions_chart(ACTIONS_VALUES)
    launchers = [["python", f"scripts/{name}"] for name in ("action_server.py", "action_server_app.py")
                 if (ROOT / "scripts" / name).is_file()]
    assert chart["command"] in launchers and chart["args"] == []
    assert chart["fullname"] == "af-actions" and chart["service_type"] == "ClusterIP"
    url = urlsplit(env_dict(RASA_VALUES["extraEnv"])["AF_ACTIONS_URL"])
    assert (url.scheme, url.hostname, url.port, url.path) == ("http", chart["fullname"], chart["service_port"],
                                                              "/webhook")
    assert chart["service_port"] == chart["values"]["applicationSettings"]["port"] == 5055
    assert not chart["ingress"] and chart["hpa_api"] is None
    v = chart["values"]
    for probe in ("readinessProbe", "livenessProbe"):  # the chart's schema: the port by name
        assert v[probe]["httpGet"] == {"path": "/health", "port": "http", "scheme": "HTTP"}, probe
    assert pod_security_problems("actions", v["podSecurityContext"], v["securityContext"]) == []
    assert env_problems("actions", v["extraEnv"]) == []
    assert v["resources"]["limits"]["cpu"] and v["resources"]["limits"]["memory"]


# --------------------------------------------------------------------------- af-app.yaml

def test_web_and_outbox_run_our_image_with_their_commands_probes_and_limits():
    found = workloads()
    web, outbox = found["web"], found["outbox"]
    assert web["command"] == ["python", "-m", "web"]
    assert outbox["command"] == ["python", "-m", "af_core.outbox"]
    port = {p["name"]: p["containerPort"] for p in web["container"]["ports"]}
    assert port == {"http": 8080} and env_dict(web["env"])["AF_WEB_PORT"] == "8080"
    for probe in ("readinessProbe", "livenessProbe"):
        assert web["container"][probe]["httpGet"]["path"] == "/" and web["container"][probe]["httpGet"]["port"] == "http"
        assert outbox["container"][probe]["exec"]["command"] == OUTBOX_CHECK, probe
    for name in ("web", "outbox"):
        container, pod = found[name]["container"], found[name]["pod"]
        assert container["resources"]["limits"]["cpu"] and container["resources"]["limits"]["memory"], name
        assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"], name
        assert pod_security_problems(name, pod.get("securityContext"), container.get("securityContext")) == []
        assert pod.get("automountServiceAccountToken") is False, name


def test_every_process_runs_our_image_at_a_fixed_tag():
    """One repository, one release tag (never `latest`): the Rasa server on the `rasa` image
    (Python 3.10), the action server, web and outbox on the `app` image of the same release
    (tag + "-app": Python 3.12, docs/deployment.md "Images")."""
    images = {name: w["image"] for name, w in workloads().items()}
    release = images["rasa"].rpartition(":")[2]
    assert release and release != "latest" and not release.endswith("-app")
    for name, image in images.items():
        repository, _, tag = image.rpartition(":")
        assert repository == "registry.kk.dk/af/af-assistenten", (name, image)
        assert tag == (release if name == "rasa" else f"{release}-app"), (name, image)


def test_secrets_come_only_from_the_secret_and_never_a_development_value():
    from af_core import settings as settings_module

    development = {v for k, v in vars(settings_module).items() if k.startswith("DEV_") and isinstance(v, str)}
    for name, workload in workloads().items():
        assert env_problems(name, workload["env"]) == []
        for item in workload["env"]:
            assert item.get("value") not in development, (name, item["name"])
            ref = (item.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == SECRET_NAME and ref["key"] == item["name"], (name, item)
    for doc in APP_DOCS:
        assert doc["kind"] not in ("Secret", "ConfigMap"), "secrets and settings are not in af-app.yaml"


def test_every_process_logs_masked_json_to_stdout_in_production():
    for name, workload in workloads().items():
        env = env_dict(workload["env"])
        assert (env.get("AF_MODE"), env.get("AF_LOG_TARGET"), env.get("AF_LOG_FORMAT")) == \
            ("production", "stdout", "json"), name


def _dummy_secret(name: str) -> str:
    return f"fake-{name.lower()}-{secrets.token_hex(24)}"  # pragma: allowlist secret (made up here)


# The optional keys of af-secrets that one valid .env would set (the others stay unset): the intranet
# signs with its own key (JWKS), or with a key shared with us; ServiceNow by OAuth or Basic.
SECRET_VARIANTS = {
    "jwks, oauth": {"AF_IDENTITY_JWKS_URL": "https://kkintra.example/.well-known/jwks.json",
                    "SERVICENOW_CLIENT_ID": None, "SERVICENOW_CLIENT_SECRET": None},
    "shared key, basic": {"AF_IDENTITY_JWT_KEY": None, "SERVICENOW_USERNAME": None, "SERVICENOW_PASSWORD": None},
}


def pod_environment(name: str, variant: str) -> Dict[str, str]:
    """The environment of process ``name``'s container, the Secret's keys filled in with made-up values."""
    chosen = SECRET_VARIANTS[variant]
    env = {}
    for item in workloads()[name]["env"]:
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        if not ref.get("optional"):
            env[item["name"]] = _dummy_secret(ref["key"])
        elif ref["key"] in chosen:
            env[item["name"]] = chosen[ref["key"]] or _dummy_secret(ref["key"])
    return env


@pytest.mark.parametrize("variant", sorted(SECRET_VARIANTS))
@pytest.mark.parametrize("name", ["rasa", "actions", "web", "outbox"])
def test_each_process_environment_is_a_valid_production_configuration(name, variant):
    """af_core/settings.py would start this process in production with these variables (the
    Secret's keys filled in with made-up values): nothing missing, nothing development-only."""
    from af_core.settings import ConfigError, load_settings, require_web_session_key

    env = pod_environment(name, variant)
    try:
        settings = load_settings(env)
        if name == "web":
            require_web_session_key(settings)
    except ConfigError as exc:
        pytest.fail(f"{name}: {exc}")
    assert not settings.development and settings.tracker_store == "postgres"


def test_every_process_gets_the_same_identity_settings():
    """Every process checks the identity configuration at start, and Rasa's channels verify with it."""
    blocks = {name: [item for item in w["env"] if item["name"].startswith("AF_IDENTITY_")]
              for name, w in workloads().items()}
    assert all(block == blocks["rasa"] for block in blocks.values()), blocks
    assert {item["name"] for item in blocks["rasa"]} >= {"AF_IDENTITY_JWKS_URL", "AF_IDENTITY_PUBLIC_KEY",
                                                         "AF_IDENTITY_JWT_KEY", "AF_IDENTITY_ISSUER",
                                                         "AF_IDENTITY_AUDIENCE"}


def store_settings(env: Iterable[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """AF_TRACKER_STORE and every AF_POSTGRES_* item (host, port, db, user, password or _FILE),
    exactly as written: a literal value or the Secret reference."""
    return {item["name"]: item for item in env
            if item["name"] == "AF_TRACKER_STORE" or item["name"].startswith("AF_POSTGRES_")}


def _pins_to_one_node(workload: Dict[str, Any]) -> List[str]:
    """What would tie this process's pods to one node (or to another process's node)."""
    found = []
    affinity = workload["affinity"] or {}
    if affinity.get("podAffinity"):
        found.append(f"podAffinity {affinity['podAffinity']!r}")
    if workload.get("node_name"):
        found.append(f"nodeName {workload['node_name']!r}")
    if "kubernetes.io/hostname" in (workload.get("node_selector") or {}):
        found.append("a nodeSelector on kubernetes.io/hostname")
    required = ((affinity.get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms", []):
        if any(e.get("key") == "kubernetes.io/hostname" for e in term.get("matchExpressions", [])):
            found.append("a required nodeAffinity on kubernetes.io/hostname")
    if SHARED_LABEL in (workload["labels"] or {}):
        found.append(f"the label {SHARED_LABEL} of the old shared SQLite volume")
    return found


def _postgres_outbox_supported() -> bool:
    from af_core import handoff_store, outbox

    return hasattr(outbox.Outbox, "for_settings") and hasattr(handoff_store.HandoffStore, "for_settings")


def outbox_worker_count_problems(outbox: Dict[str, Any], postgres_supported: bool) -> List[str]:
    """More than one outbox worker, or two at once in a rollout, only with the outbox in PostgreSQL
    (rows claimed with FOR UPDATE SKIP LOCKED). A SQLite outbox is one file on one node: exactly
    one worker, strategy Recreate, no autoscaler."""
    in_postgres = postgres_supported and env_dict(outbox["env"]).get("AF_TRACKER_STORE") == "postgres"
    if in_postgres:
        return []
    problems = []
    if outbox["replicas"] != 1:
        problems.append(f"outbox: {outbox['replicas']} workers while the outbox is SQLite (exactly one)")
    if outbox["strategy"] != {"type": "Recreate"}:
        problems.append(f"outbox: strategy {outbox['strategy']!r} while the outbox is SQLite (a rollout would run two)")
    if outbox.get("autoscaled"):
        problems.append("outbox: an autoscaler while the outbox is SQLite")
    return problems


def store_problems(found: Dict[str, Dict[str, Any]]) -> List[str]:
    """Everything that would keep the outbox and the hand-over queue off the shared PostgreSQL, or
    tie the pods to one node again."""
    problems: List[str] = []
    reference = store_settings(found["rasa"]["env"])
    if env_dict(found["rasa"]["env"]).get("AF_TRACKER_STORE") != "postgres":
        problems.append("rasa: the tracker store is not PostgreSQL (AF_TRACKER_STORE=postgres)")
    missing = [name for name in STORE_PROCESSES if name not in found]
    if missing:
        problems.append(f"no workload for {missing}")
    for name, workload in found.items():
        env = env_dict(workload["env"])
        if env.get("AF_TRACKER_STORE") != "postgres":
            problems.append(f"{name}: AF_TRACKER_STORE={env.get('AF_TRACKER_STORE')!r}, not postgres: its outbox "
                            "and hand-over queue would be SQLite files of its own pod")
        mine = store_settings(workload["env"])
        if mine != reference:
            differ = sorted(k for k in set(mine) | set(reference) if mine.get(k) != reference.get(k))
            problems.append(f"{name}: {differ} differ from the Rasa server's tracker store")
        for variable in SQLITE_STORE_VARIABLES:
            if variable in env:
                problems.append(f"{name}: sets {variable} (a SQLite file; the store is in PostgreSQL)")
        problems += [f"{name}: {what}" for what in _pins_to_one_node(workload)]
    for name in STORE_PROCESSES:
        workload = found.get(name)
        if not workload:
            continue
        for volume in workload["volumes"]:
            kinds = sorted(set(volume) - {"name"})
            if kinds not in (["secret"], ["configMap"]):
                problems.append(f"{name}: volume {volume.get('name')!r} ({', '.join(kinds)}): only read-only "
                                "settings are mounted, no volume for the outbox or the hand-over queue")
        for mount in workload["mounts"]:
            if mount.get("readOnly") is not True:
                problems.append(f"{name}: {mount.get('mountPath')} is mounted writable")
    outbox = found.get("outbox")
    if outbox:
        for probe in ("livenessProbe", "readinessProbe"):
            command = ((outbox["probes"].get(probe) or {}).get("exec") or {}).get("command")
            if command != OUTBOX_CHECK:
                problems.append(f"outbox: {probe} is {command!r}, not {OUTBOX_CHECK!r}")
        problems += outbox_worker_count_problems(outbox, _postgres_outbox_supported())
    return problems


def _set_env(workload: Dict[str, Any], name: str, value: Any) -> None:
    item = {"name": name, "value": value} if not isinstance(value, dict) else {"name": name, "valueFrom": value}
    for i, old in enumerate(workload["env"]):
        if old["name"] == name:
            workload["env"][i] = item
            return
    workload["env"].append(item)


def _add_volume(workload: Dict[str, Any], volume: Dict[str, Any], path: str) -> None:
    workload["volumes"].append(volume)
    workload["mounts"].append({"name": volume["name"], "mountPath": path})


SHARED_CLAIM = {"name": "shared", "persistentVolumeClaim": {"claimName": "af-shared"}}
ONE_NODE = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
    {"labelSelector": {"matchLabels": {SHARED_LABEL: "af-shared"}}, "topologyKey": "kubernetes.io/hostname"}]}}

BAD_DEPLOYMENTS = {
    "the outbox worker on SQLite": lambda f: _set_env(f["outbox"], "AF_TRACKER_STORE", "sqlite"),
    "web on SQLite (its own hand-over queue)": lambda f: _set_env(f["web"], "AF_TRACKER_STORE", "sqlite"),
    "the action servers without AF_TRACKER_STORE": lambda f: f["actions"]["env"].remove(
        store_settings(f["actions"]["env"])["AF_TRACKER_STORE"]),
    "Rasa's tracker store on SQLite": lambda f: _set_env(f["rasa"], "AF_TRACKER_STORE", "sqlite"),
    "web on another database": lambda f: _set_env(f["web"], "AF_POSTGRES_DB", "af_web"),
    "the action servers on another host": lambda f: _set_env(f["actions"], "AF_POSTGRES_HOST", "pg2.af.svc"),
    "the outbox worker as another user": lambda f: _set_env(f["outbox"], "AF_POSTGRES_USER", "af_outbox"),
    "another port for web only": lambda f: _set_env(f["web"], "AF_POSTGRES_PORT", "5433"),
    "the outbox worker's password from another key": lambda f: _set_env(
        f["outbox"], "AF_POSTGRES_PASSWORD", {"secretKeyRef": {"name": SECRET_NAME, "key": "AF_OUTBOX_PASSWORD"}}),
    "web's password from another Secret": lambda f: _set_env(
        f["web"], "AF_POSTGRES_PASSWORD", {"secretKeyRef": {"name": "af-web", "key": "AF_POSTGRES_PASSWORD"}}),
    "an outbox file for the action servers": lambda f: _set_env(f["actions"], "AF_OUTBOX_PATH",
                                                                 "/app/var/shared/outbox.sqlite3"),
    "a hand-over file for web": lambda f: _set_env(f["web"], "AF_HANDOFF_DB_PATH", "/app/var/shared/handoff.sqlite3"),
    "the shared claim back on the action servers": lambda f: _add_volume(f["actions"], SHARED_CLAIM, "/app/var/shared"),
    "an emptyDir for the outbox worker": lambda f: _add_volume(f["outbox"], {"name": "var", "emptyDir": {}}, "/app/var"),
    "a hostPath for web": lambda f: _add_volume(f["web"], {"name": "var", "hostPath": {"path": "/srv/af"}}, "/app/var"),
    "the supporters list mounted writable": lambda f: f["web"]["mounts"][0].pop("readOnly"),
    "the shared-volume label on the outbox worker": lambda f: f["outbox"]["labels"].update({SHARED_LABEL: "af-shared"}),
    "web tied to the others' node": lambda f: f["web"].update(affinity=ONE_NODE),
    "the action servers tied to one node": lambda f: f["actions"].update(affinity=ONE_NODE),
    "a preferred podAffinity for the outbox worker": lambda f: f["outbox"].update(affinity={"podAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": ONE_NODE[
            "podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]}]}}),
    "the outbox worker on a named node": lambda f: f["outbox"].update(node_name="node-1"),
    "web by hostname": lambda f: f["web"].update(node_selector={"kubernetes.io/hostname": "node-1"}),
    "the old SQLite liveness probe": lambda f: f["outbox"]["probes"].update(livenessProbe={"exec": {"command": [
        "python", "-c", "import sqlite3; sqlite3.connect('/app/var/shared/outbox.sqlite3').execute('select 1')"]}}),
    "no readiness probe for the outbox worker": lambda f: f["outbox"]["probes"].update(readinessProbe=None),
}


def test_our_manifests_keep_the_stores_in_postgresql_and_pin_nothing_to_a_node():
    assert store_problems(workloads()) == []
    assert sorted(workloads()) == sorted(("rasa",) + STORE_PROCESSES), \
        "a new process: decide whether it opens the outbox/hand-over queue (STORE_PROCESSES)"


@pytest.mark.parametrize("case", sorted(BAD_DEPLOYMENTS))
def test_each_way_back_to_the_shared_sqlite_volume_is_caught(case):
    found = copy.deepcopy(workloads())
    BAD_DEPLOYMENTS[case](found)
    assert store_problems(found), case


def test_every_process_that_uses_the_stores_shares_the_tracker_stores_postgresql():
    """The outbox and the hand-over queue are tables in the Rasa server's tracker store database:
    same AF_TRACKER_STORE=postgres, host, database, user and password reference everywhere."""
    reference = store_settings(workloads()["rasa"]["env"])
    assert reference["AF_TRACKER_STORE"]["value"] == "postgres"
    assert {"AF_POSTGRES_HOST", "AF_POSTGRES_DB", "AF_POSTGRES_USER", "AF_POSTGRES_PASSWORD"} <= set(reference)
    assert reference["AF_POSTGRES_PASSWORD"] == {
        "name": "AF_POSTGRES_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": SECRET_NAME, "key": "AF_POSTGRES_PASSWORD"}}}
    for name in STORE_PROCESSES:
        assert store_settings(workloads()[name]["env"]) == reference, name


def test_no_volume_for_the_outbox_or_the_hand_over_queue():
    # The one claim is the shared model store, mounted by the Rasa replicas only.
    claims = [d for d in APP_DOCS if d["kind"] in ("PersistentVolumeClaim", "PersistentVolume")]
    assert [(d["kind"], d["metadata"]["name"]) for d in claims] == [("PersistentVolumeClaim", "af-models")]
    for name, workload in workloads().items():
        env = env_dict(workload["env"])
        assert not [v for v in SQLITE_STORE_VARIABLES if v in env], name
    assert workloads()["actions"]["volumes"] == [] and workloads()["actions"]["mounts"] == []
    assert workloads()["outbox"]["volumes"] == [] and workloads()["outbox"]["mounts"] == []
    # af-web mounts only the supporters list: Secret af-supporters as a whole directory (no subPath,
    # so an updated list reaches the pods), read-only, where AF_SUPPORTERS_FILE points.
    web = workloads()["web"]
    (volume,) = web["volumes"]
    (mount,) = web["mounts"]
    assert volume["secret"]["secretName"] == "af-supporters" and mount["name"] == volume["name"]
    assert mount["readOnly"] is True and "subPath" not in mount
    supporters = Path(env_dict(web["env"])["AF_SUPPORTERS_FILE"])
    assert supporters.parent == Path(mount["mountPath"]), supporters


def test_web_and_outbox_may_spread_over_nodes():
    for name in ("web", "outbox"):
        workload = workloads()[name]
        assert _pins_to_one_node(workload) == [], name
        for constraint in workload["pod"].get("topologySpreadConstraints", []):
            # a preference: a full node never keeps a pod from starting
            assert constraint["whenUnsatisfiable"] == "ScheduleAnyway", name
            assert constraint["labelSelector"]["matchLabels"] == \
                {"app.kubernetes.io/name": workload["labels"]["app.kubernetes.io/name"]}, name


def test_the_outbox_workers_are_several_and_roll_one_at_a_time():
    """The outbox is in PostgreSQL: two workers (deliveries go on while a node is drained), and a
    rollout starts a new one before it stops an old one."""
    outbox = workloads()["outbox"]
    assert outbox["replicas"] == 2
    assert outbox["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert outbox["deployment"]["spec"]["strategy"] == outbox["strategy"]


@pytest.mark.parametrize("case, change, supported, allowed", [
    ("PostgreSQL, two workers rolling", {}, True, True),
    ("SQLite, one worker, Recreate", {"AF_TRACKER_STORE": "sqlite", "replicas": 1,
                                      "strategy": {"type": "Recreate"}}, True, True),
    ("SQLite, two workers", {"AF_TRACKER_STORE": "sqlite", "strategy": {"type": "Recreate"}}, True, False),
    ("SQLite, one worker rolling", {"AF_TRACKER_STORE": "sqlite", "replicas": 1}, True, False),
    ("SQLite, one worker, autoscaled", {"AF_TRACKER_STORE": "sqlite", "replicas": 1,
                                        "strategy": {"type": "Recreate"}, "autoscaled": True}, True, False),
    ("PostgreSQL set, but code without PostgreSQL stores", {}, False, False),
])
def test_more_than_one_outbox_worker_only_with_postgresql(case, change, supported, allowed):
    outbox = copy.deepcopy(workloads()["outbox"])
    for key, value in change.items():
        if key.startswith("AF_"):
            _set_env(outbox, key, value)
        else:
            outbox[key] = value
    assert (outbox_worker_count_problems(outbox, supported) == []) is allowed, case


def test_no_autoscaler_for_the_outbox_worker_unless_it_is_in_postgresql():
    outbox = dict(workloads()["outbox"])
    outbox["autoscaled"] = any(d["kind"] == "HorizontalPodAutoscaler" and d["spec"]["scaleTargetRef"]["name"]
                               == "af-outbox" for d in APP_DOCS)
    assert outbox_worker_count_problems(outbox, _postgres_outbox_supported()) == []


def test_the_outbox_probe_is_docker_composes_health_check():
    compose = _load(ROOT / "docker-compose.yml")
    assert compose["services"]["outbox"]["healthcheck"]["test"] == ["CMD"] + OUTBOX_CHECK
    for probe in ("livenessProbe", "readinessProbe"):
        assert workloads()["outbox"]["probes"][probe]["exec"]["command"] == OUTBOX_CHECK, probe


def test_the_outbox_probe_fails_in_danish_when_postgresql_cannot_be_reached(tmp_path):
    """The probe's exact command, with the outbox pod's environment (made-up secrets) and its
    PostgreSQL host replaced by a port nobody listens on: exit 1, a Danish message on stderr.
    (That it succeeds against a real database: tests/test_postgres_stores.py and
    tests/test_action_server_contract.py.)"""
    import socket

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    env = pod_environment("outbox", "jwks, oauth")
    env.update(AF_POSTGRES_HOST="127.0.0.1", AF_POSTGRES_PORT=str(port), PYTHONPATH=str(ROOT),
               PATH=os.environ.get("PATH", ""), AF_VAR_DIR=str(tmp_path / "var"), AF_LOG_DIR=str(tmp_path / "logs"))
    command = workloads()["outbox"]["probes"]["livenessProbe"]["exec"]["command"]
    assert command[0] == "python"
    try:
        result = subprocess.run([sys.executable] + command[1:], cwd=str(tmp_path), env=env,
                                capture_output=True, text=True, timeout=120)
    finally:
        closed.close()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Udbakken kan ikke nås" in result.stderr, result.stderr
    assert not (tmp_path / "var" / "outbox.sqlite3").exists(), "no fall-back to a SQLite file in the pod"


def test_the_web_server_calls_rasa_inside_the_cluster_and_browsers_the_public_host():
    web = env_dict(workloads()["web"]["env"])
    rasa = rasa_chart(RASA_VALUES)
    internal = urlsplit(web["AF_RASA_URL"])
    assert (internal.scheme, internal.hostname, internal.port) == ("http", rasa["fullname"], rasa["service_port"])
    (host,) = {rule["host"] for d in APP_DOCS if d["kind"] == "Ingress" for rule in d["spec"]["rules"]}
    for name, workload in workloads().items():
        public = env_dict(workload["env"]).get("AF_RASA_PUBLIC_URL")
        assert public == f"https://{host}", name


def test_only_the_page_the_console_and_the_chat_are_public():
    ingresses = [d for d in APP_DOCS if d["kind"] == "Ingress"]
    assert sorted(d["metadata"]["name"] for d in ingresses) == ["af-chat", "af-web"]
    (host,) = {rule["host"] for d in ingresses for rule in d["spec"]["rules"]}
    routes = {(p["path"], p["pathType"]): p["backend"]["service"]["name"]
              for d in ingresses for rule in d["spec"]["rules"] for p in rule["http"]["paths"]}
    assert routes == {("/", "Exact"): "af-web", ("/support", "Prefix"): "af-web", ("/static/", "Prefix"): "af-web",
                      ("/socket.io/", "Prefix"): "af-rasa", ("/webhooks/", "Prefix"): "af-rasa"}
    for path in RASA_API_PATHS + ("/dev/token", "/health", "/webhook", "/metrics"):
        assert route(path, ingresses, host) is None, path
    assert route("/", ingresses, host) == "af-web"
    assert route("/support/api/queue", ingresses, host) == "af-web"
    assert route("/static/vendor/socket.io.min.js", ingresses, host) == "af-web"
    assert route("/socket.io/", ingresses, host) == "af-rasa"
    assert route("/webhooks/rest/webhook", ingresses, host) == "af-rasa"
    for ingress in ingresses:
        assert ingress["spec"]["ingressClassName"] == "nginx"
        assert ingress["spec"]["tls"] == [{"secretName": "af-assistent-tls", "hosts": [host]}]
        for key in ingress["metadata"].get("annotations") or {}:
            assert not SNIPPET_ANNOTATION_RE.search(key), key
    chat = app_object("Ingress", "af-chat")["metadata"]["annotations"]
    assert chat["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert chat["nginx.ingress.kubernetes.io/session-cookie-name"] == "AFSRV"
    # The rasa chart's Service is the one the Ingress names, and nothing is exposed another way.
    assert rasa_chart(RASA_VALUES)["fullname"] == "af-rasa"
    assert {p["name"] for p in app_object("Service", "af-web")["spec"]["ports"]} == {"http"}
    for doc in APP_DOCS:
        if doc["kind"] == "Service":
            assert doc["spec"].get("type", "ClusterIP") == "ClusterIP", doc["metadata"]["name"]


def test_the_autoscaler_and_disruption_budget_match_the_rasa_chart():
    hpa = app_object("HorizontalPodAutoscaler", "af-rasa")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "af-rasa"}
    assert hpa["spec"]["minReplicas"] == RASA_VALUES["replicaCount"]
    selector = {"app.kubernetes.io/name": "rasa", "app.kubernetes.io/instance": "af-rasa"}  # rasa-common labels
    assert app_object("PodDisruptionBudget", "af-rasa")["spec"]["selector"]["matchLabels"] == selector
    assert app_object("NetworkPolicy", "af-rasa")["spec"]["podSelector"]["matchLabels"] == selector
    web_policy = app_object("NetworkPolicy", "af-web")["spec"]
    assert web_policy["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "af-web"}
    assert [port["port"] for rule in web_policy["ingress"] for port in rule["ports"]] == [8080]


# --------------------------------------------------------------------------- optional: real tools

def _render(chart_env: str, release: str, values: Dict[str, Any], tmp_path: Path) -> List[Dict[str, Any]]:
    chart = os.environ.get(chart_env)
    if not chart:
        pytest.skip(f"{chart_env} is not set (the chart as a directory or .tgz, e.g. from helm pull)")
    values_file = tmp_path / f"{release}-values.yaml"
    values_file.write_text(yaml.safe_dump(values), encoding="utf-8")
    helm = shutil.which("helm")
    if helm:
        result = subprocess.run([helm, "template", release, chart, "--namespace", "af", "-f", str(values_file)],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        text = result.stdout
    elif os.environ.get("AF_HELM_PYTHON"):
        script = (
            "import json, sys, yaml, helm_python as h\n"
            "chart, release, values = sys.argv[1:4]\n"
            "loaded = h.Chart.load_archive(open(chart, 'rb').read()) if chart.endswith('gz') else h.Chart.load(chart)\n"
            "with loaded as c:\n"
            "    print(json.dumps(c.render(yaml.safe_load(open(values)), name=release, namespace='af')))\n"
        )
        result = subprocess.run([os.environ["AF_HELM_PYTHON"], "-c", script, chart, release, str(values_file)],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        rendered = json.loads(result.stdout)
        text = "\n---\n".join(body for path, body in sorted(rendered.items()) if not path.endswith("NOTES.txt"))
    else:
        pytest.skip("no `helm` on PATH and no AF_HELM_PYTHON (a Python with helm-python-sdk)")
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _one(docs: List[Dict[str, Any]], kind: str) -> Dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"one {kind}: {[d['metadata']['name'] for d in found]}"
    return found[0]


@pytest.mark.parametrize("case", [
    "ours", "stock channels (the chart README's example)", "credentials off: an empty file, no channel",
    "args left empty", "our command dropped", "the chart's Ingress on /", "the demo model",
    "the chart's tracker store"])
def test_the_model_agrees_with_helm(case, tmp_path):
    """The real chart renders what rasa_chart() says: the mounted credentials, command, args,
    init containers, env names, Ingress paths. Also for the broken variants."""
    values = RASA_VALUES if case == "ours" else helm_merge(RASA_VALUES, BAD_RASA_VALUES[case])
    docs = _render("AF_HELM_CHART_RASA", "af-rasa", values, tmp_path)
    model = rasa_chart(values)
    deployment = _one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "rasa-oss"]
    config = yaml.safe_load(_one(docs, "ConfigMap")["data"]["credentials"] or "{}") or {}
    assert config == model["credentials"]
    endpoints = yaml.safe_load(_one(docs, "ConfigMap")["data"]["endpoints"] or "{}") or {}
    assert sorted(endpoints) == sorted(model["endpoints"])
    assert container.get("command") == model["command"]
    assert [str(a) for a in container["args"]] == [str(a) for a in model["args"]]
    assert [m["mountPath"] for m in container["volumeMounts"]] == model["mounts"]
    assert [c["name"] for c in pod.get("initContainers", [])] == model["init_containers"]
    assert [e["name"] for e in container["env"]] == model["env"]
    assert container["image"] == model["image"]
    ingresses = [d for d in docs if d["kind"] == "Ingress"]
    paths = [p["path"] for d in ingresses for rule in d["spec"]["rules"] for p in rule["http"]["paths"]]
    assert (paths or None) == model["ingress_paths"]
    assert not [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"] or model["hpa_api"]
    if case == "ours":
        assert rasa_problems(values) == []
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert _one(docs, "Service")["metadata"]["name"] == "af-rasa"
        _validate(docs, tmp_path, "rendered-rasa")


def test_the_action_server_chart_renders_our_values(tmp_path):
    docs = _render("AF_HELM_CHART_ACTIONS", "af-actions", ACTIONS_VALUES, tmp_path)
    model = actions_chart(ACTIONS_VALUES)
    (container,) = _one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["command"] == model["command"] and "args" not in container
    assert [e["name"] for e in container["env"]] == model["env"] and container["image"] == model["image"]
    service = _one(docs, "Service")
    assert service["metadata"]["name"] == "af-actions" and service["spec"]["ports"][0]["port"] == 5055
    assert not [d for d in docs if d["kind"] in ("Ingress", "HorizontalPodAutoscaler")]
    _validate(docs, tmp_path, "rendered-actions")


def _validate(docs: List[Dict[str, Any]], tmp_path: Path, name: str) -> None:
    tool = shutil.which("kubernetes-validate")
    if not tool:
        return
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    for version in KUBERNETES_VERSIONS:
        result = subprocess.run([tool, "--strict", "--quiet", "-k", version, str(path)],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"Kubernetes {version}: {result.stdout}{result.stderr}"


def test_our_manifests_are_valid_kubernetes(tmp_path):
    if not shutil.which("kubernetes-validate"):
        pytest.skip("kubernetes-validate is not on PATH (pip install kubernetes-validate, in its own venv)")
    _validate(APP_DOCS, tmp_path, "af-app")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_every_rasa_replica_mounts_the_shared_model_store_it_follows():
    """Issue 15: make activate / rollback reach every replica: all of them read models/i-drift in one
    ReadWriteMany volume (scripts/model_watch.py), at the path AF_MODELS_DIR names."""
    (claim,) = [d for d in APP_DOCS if d["kind"] == "PersistentVolumeClaim" and d["metadata"]["name"] == "af-models"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    rasa = workloads()["rasa"]
    (volume,) = [v for v in rasa["volumes"] if (v.get("persistentVolumeClaim") or {}).get("claimName") == "af-models"]
    (mount,) = [m for m in rasa["mounts"] if m["name"] == volume["name"]]
    assert env_dict(rasa["env"])["AF_MODELS_DIR"] == mount["mountPath"] == "/app/var/models"
    assert not mount.get("readOnly")  # serving.py writes the pointer from any one replica
