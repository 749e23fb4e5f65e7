"""No secrets in the repository: every tracked file is scanned.

Secrets come only from the environment (or files named by it). The only
secret-looking values allowed in the repository are the documented
development defaults in af_core/settings.py (the DEV_* constants, refused in
production mode), obvious placeholders, and values that say they are fake
(``test``, ``fake``, ``dummy``, ``eksempel``, ...).

In tests/, a lower-case name with a short made-up value (``token="abc.def.ghi"``)
is a test's own fake; upper-case (environment variable) names and random-looking
values are flagged there too.

A line that holds a deliberately fake value that the scanner cannot tell
from a real one can carry the marker ``pragma: allowlist secret``.
"""
from __future__ import annotations

import math
import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Set

import pytest

from af_core import settings as settings_module

ROOT = Path(__file__).resolve().parent.parent
ALLOW_MARKER = "pragma: allowlist" + " secret"
MAX_FILE_BYTES = 2_000_000
CODE_SUFFIXES = (".py", ".js", ".mjs", ".cjs", ".ts", ".jsx", ".tsx", ".java", ".go", ".rb")

# The documented development defaults, allowed explicitly.
DEV_DEFAULTS: Set[str] = {
    value
    for name, value in vars(settings_module).items()
    if name.startswith("DEV_") and isinstance(value, str) and value
}

# --------------------------------------------------------------------------- rules

_KEY_BEGIN = "-----BEGIN"
_PRIVATE_KEY_RE = re.compile(_KEY_BEGIN + r" (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_KNOWN_TOKEN_RES = {
    "AWS-adgangsnøgle": re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"),
    "GitHub-token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{50,})\b"),
    "Slack-token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "Google API-nøgle": re.compile(r"\bAIza[0-9A-Za-z\-_]{35}\b"),
    "Stripe-nøgle": re.compile(r"\b[sr]k_live_[0-9A-Za-z]{20,}\b"),
    "JWT": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{16,}"),
    "URL med adgangskode": re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@\"']+:(?P<value>[^\s@/\"'$<{]{4,})@[^\s]+"),
}
_AWS_SECRET_RE = re.compile(r"aws_?secret_?access_?key\W{0,5}[A-Za-z0-9/+=]{40}\b", re.IGNORECASE)

# A name that says "secret"...
_SECRET_WORD = r"(?:password|passwd|pwd|secret|token|api_?key|access_?key|private_?key|jwt_?key|session_?key|signing_?key)"
# ... but not one that names a file, a setting's kind, or a length.
_NOT_SECRET_NAME_RE = re.compile(
    r"(?:_file|_path|_url|_algorithm|_method|_minutes|_seconds|_ttl|_name|_evt|_header|_type|_length|_key_?id"
    r"|_prefix|_env|_var|_field|_param|_len|_count|_expiry|_expires?(_in)?|_uri|_endpoint)$",
    re.IGNORECASE,
)
_ASSIGN_RE = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*" + _SECRET_WORD + r"[A-Za-z0-9_]*|" + _SECRET_WORD + r")"
    r"[\"']?\s*(?::=|=>|=|:)\s*"
    r"(?P<q>[\"']?)(?P<value>[^\s\"'`,;)}\]]*)(?P=q)",
    re.IGNORECASE,
)
_PLACEHOLDER_RE = re.compile(
    r"^(?:<.*>|\$.*|\{.*\}|%\(.*|\*+|x+|\.+|-+|_+|none|null|nil|true|false|yes|no|ja|nej|"
    r"required|optional|str|string|bytes|int|any|\?+|\.\.\..*|.*\.\.\.)$",
    re.IGNORECASE,
)
_FAKE_WORDS_RE = re.compile(
    r"test|fake|dummy|example|eksempel|sample|placeholder|changeme|change-me|skift-mig|forkert|wrong|invalid|"
    r"ugyldig|udvikling|development|dev-|-dev|not-?a-?secret|ikke-hemmelig|redacted|skjult|mock|stub|demo|fixture",
    re.IGNORECASE,
)
_ENV_NAME_RE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
_FILE_NAME_RE = re.compile(r"^[\w./-]+\.(?:ya?ml|json|txt|cfg|ini|conf|toml|md|py|db|sqlite3?)$", re.IGNORECASE)
_ENV_FILE_RE = re.compile(r"(?:^|/)(?:\.env(?:\.[^/]*)?|[^/]+\.env)$")
_ENV_TEMPLATE_RE = re.compile(r"\.(?:example|sample|template|dist|tmpl)$")
_KEY_FILE_RE = re.compile(r"(?:^|/)(?:id_rsa|id_dsa|id_ecdsa|id_ed25519)$|\.(?:pem|key|p12|pfx|jks|keystore)$")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}"


def shannon_entropy(value: str) -> float:
    if not value:
        return 0.0
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def looks_random(value: str) -> bool:
    """Long and varied enough to be a generated secret rather than a made-up test value."""
    return len(value) >= 16 and shannon_entropy(value) >= 3.5


def _is_allowed_value(value: str) -> bool:
    if len(value) < 6 or value in DEV_DEFAULTS:
        return True
    if _PLACEHOLDER_RE.match(value) or _FAKE_WORDS_RE.search(value):
        return True
    if "{" in value or "(" in value or "%" in value:  # a template or an expression, not a literal
        return True
    if _ENV_NAME_RE.match(value):  # names another variable: ?token=RASA_API_TOKEN
        return True
    if _FILE_NAME_RE.match(value):  # names a file, e.g. credentials="credentials.yml"
        return True
    return False


def scan_text(path: str, text: str) -> List[Finding]:
    """Secret-looking things in one file's text (path decides the language rules)."""
    findings: List[Finding] = []
    code = path.endswith(CODE_SUFFIXES)
    in_tests = path.startswith("tests/") or "/tests/" in path
    for number, line in enumerate(text.splitlines(), start=1):
        if ALLOW_MARKER in line:
            continue
        if _PRIVATE_KEY_RE.search(line):
            findings.append(Finding(path, number, "privat nøgle"))
        if _AWS_SECRET_RE.search(line):
            findings.append(Finding(path, number, "AWS secret access key"))
        for rule, regex in _KNOWN_TOKEN_RES.items():
            match = regex.search(line)
            if match and not _is_allowed_value(match.groupdict().get("value") or match.group(0)):
                findings.append(Finding(path, number, rule))
        for match in _ASSIGN_RE.finditer(line):
            name, quote, value = match.group("name"), match.group("q"), match.group("value")
            if _NOT_SECRET_NAME_RE.search(name):
                continue
            if code and not quote:  # in program code only string literals are values
                continue
            if _is_allowed_value(value):
                continue
            if in_tests and not name.isupper() and not looks_random(value):
                continue  # a test's own fake value, e.g. token="abc.def.ghi"
            findings.append(Finding(path, number, f"hemmelighed tildelt {name}"))
    return findings


def scan_path(path: str, data: bytes) -> List[Finding]:
    findings: List[Finding] = []
    if _ENV_FILE_RE.search(path) and not _ENV_TEMPLATE_RE.search(path):
        findings.append(Finding(path, 0, ".env-fil må ikke ligge i repoet"))
    if _KEY_FILE_RE.search(path):
        findings.append(Finding(path, 0, "nøglefil må ikke ligge i repoet"))
    if b"\0" in data[:8192] or len(data) > MAX_FILE_BYTES:
        return findings
    findings += scan_text(path, data.decode("utf-8", errors="replace"))
    return findings


def tracked_files(root: Path) -> List[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=root, check=True, capture_output=True, timeout=60
    ).stdout
    return [name for name in out.decode("utf-8").split("\0") if name]


def scan_repo(root: Path) -> List[Finding]:
    findings: List[Finding] = []
    for name in tracked_files(root):
        path = root / name
        if not path.is_file():  # deleted in the working tree
            continue
        findings += scan_path(name, path.read_bytes())
    return findings


# --------------------------------------------------------------------------- the repository


def test_repository_has_no_committed_secrets():
    findings = scan_repo(ROOT)
    assert not findings, (
        "Mulige hemmeligheder i repoet (brug miljøvariabler, eller markér en tydeligt falsk "
        f"testværdi med '{ALLOW_MARKER}'):\n" + "\n".join(map(str, findings))
    )


def test_development_defaults_exist_and_are_marked_as_development():
    assert DEV_DEFAULTS, "af_core/settings.py skal have DEV_*-standardværdier"
    for value in DEV_DEFAULTS:
        assert _FAKE_WORDS_RE.search(value) or value.startswith("af."), value


# --------------------------------------------------------------------------- the scanner itself

# Built at runtime, so this file itself contains no secret-looking literals.
HUNTER = "hunter2" + "real"
AWS_ID = "AKIA" + "Q3EXAMPLEQ7Z2MX4ABC".replace("EXAMPLE", "ZXCVBNM")[:16]
PEM = _KEY_BEGIN + " RSA PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----"
RANDOM = "Zq8" + "xN4vLr2Tp9WkHs7Yb3Fd"


@pytest.mark.parametrize(
    "path,text",
    [
        ("README.md", "export SERVICENOW_PASSWORD=" + HUNTER),
        ("docs/deployment.md", "Sæt `SERVICENOW_PASSWORD=" + HUNTER + "` i miljøet"),
        ("scripts/start.sh", "SERVICENOW_PASSWORD='" + HUNTER + "' python -m x"),
        ("deploy/compose.yml", "    SERVICENOW_PASSWORD: " + HUNTER),
        ("deploy/compose.yml", "    - SERVICENOW_PASSWORD=" + HUNTER),
        ("endpoints.yml", "  password: \"" + HUNTER + "\""),
        ("actions/x.py", "SERVICENOW_PASSWORD = \"" + HUNTER + "\""),
        ("actions/x.py", "client = Client(password='" + HUNTER + "')"),
        ("actions/x.py", "config = {\"client_secret\": \"" + RANDOM + "\"}"),
        ("tests/test_x.py", "env = {\"AF_IDENTITY_JWT_KEY\": \"" + RANDOM + "\"}"),
        ("config.json", "{\"api_key\": \"" + RANDOM + "\"}"),
        ("tests/test_x.py", "client(password='" + RANDOM + "')"),
        ("tests/test_x.py", "SERVICENOW_PASSWORD = '" + HUNTER + "'"),
        ("web/static/chat.js", "const opts = { token: '" + RANDOM + "' };"),
        ("notes.txt", "rasa run --auth-token=" + RANDOM),
        ("notes.txt", "nøgle: " + AWS_ID),
        ("keys.txt", PEM),
        ("notes.txt", "postgresql://af:" + HUNTER + "@db:5432/af"),
        ("notes.txt", "gh" + "p_" + "a1B2c3D4" * 5),
    ],
)
def test_scanner_finds_secrets(path, text):
    assert scan_text(path, text), text


@pytest.mark.parametrize(
    "path,text",
    [
        ("af_core/settings.py", f'DEV_SERVICENOW_PASSWORD = "{settings_module.DEV_SERVICENOW_PASSWORD}"'),
        ("README.md", f"SERVICENOW_PASSWORD={settings_module.DEV_SERVICENOW_PASSWORD} (kun udvikling)"),
        ("README.md", "export SERVICENOW_PASSWORD=<adgangskoden>"),
        ("README.md", "SERVICENOW_PASSWORD_FILE=/run/secrets/servicenow"),
        ("endpoints.yml", "  password: ${AF_POSTGRES_PASSWORD}"),
        ("endpoints.yml", '  password: "${AF_POSTGRES_PASSWORD}"'),
        ("actions/x.py", "password=settings.servicenow_password,"),
        ("actions/x.py", "def verify_token(token: Any, settings=None):"),
        ("actions/x.py", 'METADATA_KEY = "identity_token"'),
        ("actions/x.py", 'headers = {"Authorization": f"Bearer {token}"}'),
        ("actions/x.py", 'url = f"{base}/tracker?token={settings.rasa_api_token}"'),
        ("actions/x.py", 'token = ""'),
        ("tests/test_x.py", 'bad = issue_token(ident, key="forkert-noegle")'),
        ("web/static/chat.js", 'return { identity_token: opts.token || "" };'),
        ("tests/test_x.py", 'metadata = {"identity_token": "abc.def.ghi", "email": "a@b.dk"}'),
        ("web/static/chat.js", "opts.tokenUrl = d.tokenUrl || '';"),
        ("scripts/x.py", 'rasa.api.run(credentials="credentials.yml", auth_token=token)'),
        ("credentials.yml", "  jwt_method: HS256"),
        ("credentials.yml", "  metadata_key: customData"),
        ("docs/security.md", "| `RASA_API_TOKEN` | token til Rasa's HTTP API |"),
        ("notes.txt", "http://127.0.0.1:5005/conversations/x/tracker?token=..."),
        ("notes.txt", "sys_id 0123456789abcdef0123456789abcdef"),
        ("docs/security.md", "| Rasas HTTP API | `?token=RASA_API_TOKEN` |"),
        ("tests/test_x.py", "password = '" + HUNTER + "'  # " + ALLOW_MARKER),
    ],
)
def test_scanner_allows_references_placeholders_and_dev_defaults(path, text):
    assert scan_text(path, text) == [], text


@pytest.mark.parametrize("path", [".env", "deploy/.env", ".env.production", "prod.env", "certs/server.key", "id_rsa", "tls.pem"])
def test_env_and_key_files_are_refused(path):
    assert scan_path(path, b"# tom\n")


@pytest.mark.parametrize("path", [".env.example", "deploy/.env.sample", "docs/environment.md"])
def test_env_templates_are_allowed(path):
    assert scan_path(path, b"SERVICENOW_PASSWORD=\nAF_MODE=production\n") == []


def test_entropy_helper():
    assert shannon_entropy(RANDOM) > 4.0 > shannon_entropy("aaaaabbbbb")


def test_a_commit_with_a_password_is_caught(tmp_path):
    """End to end on a throw-away git repository: the scan sees tracked files only."""

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, timeout=60)

    git("init", "-q")
    (tmp_path / "ok.md").write_text("SERVICENOW_PASSWORD=<adgangskoden>\n")
    (tmp_path / "untracked.txt").write_text("SERVICENOW_PASSWORD=" + HUNTER + "\n")
    git("add", "ok.md")
    assert scan_repo(tmp_path) == []
    (tmp_path / "deploy.sh").write_text("export SERVICENOW_PASSWORD=" + HUNTER + "\n")
    git("add", "deploy.sh")
    findings = scan_repo(tmp_path)
    assert [(f.path, f.line) for f in findings] == [("deploy.sh", 1)]
