"""The scaled deployment's files (docker-compose.yml, deploy/haproxy.cfg, .env.example)
say what docs/deployment.md promises: no secret has a default, the proxy keeps a browser
on one Rasa replica, every long-running service has a health check. When Debian's
docker-compose / haproxy are installed, their own offline validators must accept the files."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]
SECRETS = ("RASA_API_TOKEN", "AF_IDENTITY_JWT_KEY", "AF_WEB_SESSION_KEY", "AF_POSTGRES_PASSWORD",
           "AF_REDIS_PASSWORD", "SERVICENOW_PASSWORD", "SERVICENOW_CLIENT_SECRET")


def _example() -> dict:
    values = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def test_topology_has_two_rasa_and_two_action_servers_behind_the_proxy():
    assert SERVICES["rasa"]["deploy"]["replicas"] == 2
    assert SERVICES["actions"]["deploy"]["replicas"] == 2
    env = SERVICES["rasa"]["environment"]
    assert env["AF_TRACKER_STORE"] == "postgres" and env["AF_LOCK_STORE"] == "redis"
    assert env["AF_ACTIONS_URL"].startswith("http://proxy:")
    assert "ports" not in SERVICES["rasa"] and "ports" not in SERVICES["actions"]  # only the proxy is published
    assert SERVICES["servicenow-emulator"]["profiles"] == ["development"]
    for name in ("rasa", "actions", "web", "postgres", "redis", "outbox", "proxy"):
        assert "healthcheck" in SERVICES[name], name


def test_no_secret_has_a_default_and_the_example_leaves_them_empty():
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    for name in ("RASA_API_TOKEN", "AF_WEB_SESSION_KEY", "AF_POSTGRES_PASSWORD", "AF_REDIS_PASSWORD",
                 "AF_IDENTITY_ISSUER", "AF_IDENTITY_AUDIENCE"):
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert uses and all(use.startswith(":?") for use in uses), f"{name}: {uses}"
    # The identity key is a shared key OR the intranet's public key / JWKS: compose passes whichever
    # .env has (never a default) and af_core/settings.py refuses to start without one.
    for name in ("AF_IDENTITY_JWT_KEY", "AF_IDENTITY_PUBLIC_KEY", "AF_IDENTITY_JWKS_URL"):
        assert all(use.startswith(":?") for use in re.findall(r"\$\{" + name + r"([^}]*)\}", text)), name
    example = _example()
    for name in SECRETS:
        assert example.get(name, None) == "", f"{name} skal stå tom i .env.example"
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_proxy_keeps_socketio_sticky_to_one_rasa_replica():
    cfg = (ROOT / "deploy" / "haproxy.cfg").read_text(encoding="utf-8")
    rasa_backend = cfg.split("\nbackend rasa\n", 1)[1].split("\nbackend ", 1)[0]
    assert re.search(r"^\s*cookie AFSRV insert", rasa_backend, re.M)
    assert re.search(r"server-template rasa \d+ rasa:5005 cookie", rasa_backend)
    assert "/socket.io/" in cfg


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose (Debian) er ikke installeret")
def test_docker_compose_accepts_the_file_offline(tmp_path):
    shutil.copy(ROOT / "docker-compose.yml", tmp_path)
    env = "\n".join(f"{k}={v or 'x'}" for k, v in _example().items())
    (tmp_path / ".env").write_text(env + "\n")
    for args in ([], ["--profile", "development"], ["--profile", "trainer"]):
        result = subprocess.run(["docker-compose", *args, "-f", "docker-compose.yml", "config", "-q"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    (tmp_path / ".env").write_text(env.replace("AF_REDIS_PASSWORD=x", "AF_REDIS_PASSWORD=") + "\n")
    result = subprocess.run(["docker-compose", "-f", "docker-compose.yml", "config", "-q"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "AF_REDIS_PASSWORD" in result.stderr


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy er ikke installeret")
def test_haproxy_accepts_its_config():
    result = subprocess.run(["haproxy", "-c", "-f", str(ROOT / "deploy" / "haproxy.cfg")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_way_rasa_is_started_has_telemetry_off():
    """Issue 15: a municipal deployment sits on a closed network; Rasa must not try to call home -
    not in make, the test script, the server (however it is started), the image or the Helm chart."""
    assert "export RASA_TELEMETRY_ENABLED := false" in (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "export RASA_TELEMETRY_ENABLED=false" in (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")
    assert 'os.environ["RASA_TELEMETRY_ENABLED"] = "false"' in (ROOT / "scripts" / "rasa_server.py").read_text(
        encoding="utf-8")
    assert "RASA_TELEMETRY_ENABLED=false" in (ROOT / "Dockerfile").read_text(encoding="utf-8")
    helm = yaml.safe_load((ROOT / "deploy" / "helm" / "rasa-values.yaml").read_text(encoding="utf-8"))
    # The chart sets RASA_TELEMETRY_ENABLED from this (once; tests/test_helm.py).
    assert helm["applicationSettings"]["telemetry"]["enabled"] is False


def test_rasa_http_api_is_not_public_and_no_url_is_logged_with_its_query():
    """Issue 14: the API token could replace the model and read every tracker. Publicly only the
    page, the console, socket.io and the channel webhooks; haproxy logs paths, not query strings."""
    cfg = (ROOT / "deploy" / "haproxy.cfg").read_text(encoding="utf-8")
    public = cfg.split("\nfrontend public\n", 1)[1].split("\nbackend ", 1)[0]
    routed = re.search(r"^\s*acl to_rasa path_beg (.+)$", public, re.M).group(1).split()
    assert sorted(routed) == ["/socket.io/", "/webhooks/"]
    assert not re.search(r"^\s*option httplog", cfg, re.M)
    log_format = re.search(r'^\s*log-format "(.+)"', cfg, re.M).group(1)
    assert "%HP" in log_format and not re.search(r"%(HU|r|\{\+Q\}r|HQ)\b", log_format)
    assert re.search(r"deny deny_status 413 if \{ req.hdr_val\(content-length\) gt \d+ \}", public)
    assert re.search(r"deny deny_status 429", public)
    # The web server reaches Rasa's API on the internal network, not through the proxy.
    assert SERVICES["web"]["environment"]["AF_RASA_URL"] == "http://rasa:5005"
    helm = yaml.safe_load((ROOT / "deploy" / "helm" / "rasa-values.yaml").read_text(encoding="utf-8"))
    names = {item["name"] for item in helm["extraEnv"]}
    assert "AF_RASA_PUBLIC_URL" in names and "AF_RASA_URL" not in names
    # Kubernetes: the chart's own Ingress (its path "/" = the API) is off; deploy/helm/af-app.yaml
    # routes only /socket.io/ and /webhooks/ to Rasa (tests/test_helm.py).
    assert helm["ingress"]["enabled"] is False


def test_the_app_image_holds_what_the_action_server_and_the_web_server_read():
    """The app image (Python 3.12, no Rasa) runs the action server, the web pages and the outbox:
    it needs the code, the organisation profile and the domain (the main menu is read from
    domain/basics.yml), not the training data or the model."""
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    app_stage = dockerfile.split(" AS app\n", 1)[1].split("\nFROM ", 1)[0]
    copied = set(re.findall(r"^COPY (?:--from=\S+ )?\S+?/? (\S+?)/?$", app_stage, re.M))
    assert {"actions", "web", "scripts", "profiles", "domain"} <= copied, copied
    assert "models" not in copied and "data" not in copied


def test_every_rasa_replica_in_compose_follows_one_shared_model_store():
    """Issue 15: an activated model reaches every replica (scripts/model_watch.py), so all of them
    mount the same volume at the path AF_MODELS_DIR names."""
    rasa = SERVICES["rasa"]
    assert rasa["environment"]["AF_MODELS_DIR"] == "/app/var/models"
    assert "models:/app/var/models" in rasa["volumes"] and "models" in COMPOSE["volumes"]
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    rasa_stage = dockerfile.split(" AS rasa\n", 1)[1]
    assert "var/models" in rasa_stage  # the mount point exists and belongs to the image's user


def test_the_trainer_service_trains_on_the_rasa_image_into_the_replicas_model_store():
    """Issue 17: the workbench trains only where Rasa is (trainer.jobs.can_train). In Compose that
    is the trainer service on the Rasa image; what it activates is the store the replicas follow,
    and the proxy sends the workbench there only while it runs."""
    trainer, rasa = SERVICES["trainer"], SERVICES["rasa"]
    assert trainer["image"] == rasa["image"] and trainer["profiles"] == ["trainer"]
    assert trainer["command"] == ["python", "-m", "web"]
    env = trainer["environment"]
    assert env["AF_TRAINER_PYTHON"] == "/usr/local/bin/python" and env["AF_TRAINER_ROOT"] == "/app"
    assert env["AF_MODELS_DIR"] == "/app/models" and "models:/app/models" in trainer["volumes"]
    assert "models:/app/var/models" in rasa["volumes"]  # the same volume
    for folder in ("data", "domain", "profiles"):
        assert any(v.endswith(f":/app/{folder}") for v in trainer["volumes"]), folder
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    base = dockerfile.split(" AS rasa-base\n", 1)[1].split("\nFROM ", 1)[0]
    assert "COPY tests/eval/ tests/eval/" in base  # what a new model is measured on
    proxy = (ROOT / "deploy" / "haproxy.cfg").read_text(encoding="utf-8")
    assert "use_backend trainer if to_trainer { nbsrv(trainer) gt 0 }" in proxy
    assert "server-template trainer 1 trainer:8080" in proxy
