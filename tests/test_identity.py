"""Who the leader is: signed identity tokens, checked before anything is trusted.

Unit tests of the token (signature, algorithm, issuer, audience, lifetime, e-mail; shared key,
public key and the intranet's JWKS) and the channel boundary, then the running stack:
nothing the leader types (text, forged ``/intent{...}`` payloads, metadata keys) can change
the identity slots set from the verified token.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from af_core.identity import IdentityError, identity_from_metadata, issue_token, verify_token
from af_core.settings import ConfigError, load_settings
from channels import inbound
from tests.production_env import production_env, sign_token


KEY = "en-test-noegle-til-identitetstokens-0123456789"
METTE = {"name": "Mette Hansen", "email": "mette.hansen@buf.kk.dk", "institution": "Valby Skole", "unit": "af-syd"}


def settings(required: bool = True, key: str = KEY, **env):
    return load_settings(production_env(AF_IDENTITY_JWT_KEY=key,
                                        AF_IDENTITY_REQUIRED="true" if required else "false", **env))


def token(identity=METTE, config=None, **kwargs) -> str:
    """A token as the intranet signs it for ``config`` (default: settings())."""
    return sign_token(identity, config or settings(), **kwargs)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# -- the token ---------------------------------------------------------------------
def test_valid_token_gives_the_identity():
    identity = verify_token(token(), settings())
    assert identity.as_dict() == METTE


def test_expired_token_is_refused():
    expired = token(iat=int(time.time()) - 3600, exp=int(time.time()) - 1)
    with pytest.raises(IdentityError, match="udløbet"):
        verify_token(expired, settings())


def test_wrongly_signed_token_is_refused():
    forged = token(key="en-anden-noegle-en-anden-noegle-0123456789")
    with pytest.raises(IdentityError, match="ugyldig"):
        verify_token(forged, settings())


@pytest.mark.parametrize("value", [None, "", "   ", 42, {"name": "Mette"}, "x" * 20_000])
def test_missing_token_is_refused(value):
    with pytest.raises(IdentityError):
        verify_token(value, settings())


def test_unsigned_and_tampered_tokens_are_refused():
    payload = {**METTE, "iss": settings().identity_issuer, "aud": settings().identity_audience,
               "iat": int(time.time()), "exp": int(time.time()) + 600}
    unsigned = jwt.encode(payload, key=None, algorithm="none")
    with pytest.raises(IdentityError):
        verify_token(unsigned, settings())
    header, body, signature = token().split(".")
    forged_body = jwt.utils.base64url_encode(json.dumps({**payload, "name": "Hacker"}).encode()).decode()
    with pytest.raises(IdentityError):
        verify_token(f"{header}.{forged_body}.{signature}", settings())


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud"])
def test_token_without_a_required_claim_is_refused(claim):
    with pytest.raises(IdentityError):
        verify_token(token(**{claim: None}), settings())


@pytest.mark.parametrize("claims", [
    {"iss": "https://evil.test/login"},
    {"aud": "en-anden-tjeneste"},
    {"aud": ["en-anden-tjeneste"]},
])
def test_token_for_another_issuer_or_audience_is_refused(claims):
    with pytest.raises(IdentityError, match="ugyldig"):
        verify_token(token(**claims), settings())


def test_token_whose_audience_list_includes_us_is_accepted():
    config = settings()
    assert verify_token(token(aud=["noget-andet", config.identity_audience]), config).email == METTE["email"]


def test_token_that_lives_longer_than_twelve_hours_is_refused():
    now = int(time.time())
    assert verify_token(token(iat=now - 60, exp=now - 60 + 12 * 3600), settings()).name == "Mette Hansen"
    with pytest.raises(IdentityError, match="levetid"):
        verify_token(token(iat=now - 60, exp=now - 60 + 12 * 3600 + 1), settings())
    with pytest.raises(IdentityError, match="levetid"):
        verify_token(token(iat=now - 60, exp=now + 10 * 365 * 86400), settings())
    shorter = settings(AF_IDENTITY_MAX_LIFETIME_SECONDS="3600")
    with pytest.raises(IdentityError, match="levetid"):
        verify_token(token(config=shorter, lifetime=2 * 3600), shorter)


def test_token_issued_in_the_future_is_refused():
    now = int(time.time())
    with pytest.raises(IdentityError):
        verify_token(token(iat=now + 3600, exp=now + 7200), settings())
    with pytest.raises(IdentityError):
        verify_token(token(nbf=now + 3600), settings())


def test_only_the_configured_algorithm_is_accepted():
    other_algorithm = token(algorithm="HS384", key=KEY + "-ekstra-laengde")
    with pytest.raises(IdentityError, match="ugyldig"):
        verify_token(other_algorithm, settings(key=KEY + "-ekstra-laengde"))


@pytest.mark.parametrize("email", [
    "", "mette", "mette@", "@buf.kk.dk", "mette@buf", "mette@localhost", "mette hansen@buf.kk.dk",
    " mette@buf.kk.dk x", "mette@buf.kk.dk\n", "mette@buf.kk.dk\r\nBcc: x@evil.dk", "mette\x00@buf.kk.dk",
    "<mette@buf.kk.dk>", "Mette Hansen <mette@buf.kk.dk>", "mette@buf.kk.dk,chef@buf.kk.dk",
    "mette@buf.kk.dk;chef@buf.kk.dk", "mette@@buf.kk.dk", "mette@buf..kk.dk", "mette@.buf.kk.dk",
    "mette@buf.kk.dk.", ".mette@buf.kk.dk", "mette..hansen@buf.kk.dk", "mette@-buf.kk.dk", "mette@buf_kk.dk",
    "mette@buf.kk.d1", "møtte@buf.kk.dk", "mette@bυf.kk.dk", "m^ette@buf.kk.dk", "m=ette@buf.kk.dk",
    "a" * 65 + "@buf.kk.dk", ["mette@buf.kk.dk"], {"email": "mette@buf.kk.dk"}, 42,
])
def test_a_token_without_one_plain_email_address_is_refused(email):
    with pytest.raises(IdentityError, match="e-mail"):
        verify_token(token(dict(METTE, email=email)), settings())


@pytest.mark.parametrize("email", ["mette.hansen@buf.kk.dk", "MH12@KK.DK", "mette_h-2+af@sub.buf.kk.dk"])
def test_plain_email_addresses_are_accepted(email):
    assert verify_token(token(dict(METTE, email=email)), settings()).email == email


def test_the_email_domain_must_be_on_the_allow_list_when_there_is_one():
    config = settings(AF_IDENTITY_EMAIL_DOMAINS="buf.kk.dk,kk.dk")
    for email in ("mette@buf.kk.dk", "mette@kk.dk", "mette@skole.buf.kk.dk", "Mette@BUF.KK.DK"):
        assert verify_token(token(dict(METTE, email=email), config), config).email == email
    for email in ("mette@evil.dk", "mette@evilkk.dk", "mette@buf.kk.dk.evil.dk", "mette@kk.dk.evil.dk"):
        with pytest.raises(IdentityError, match="e-mail"):
            verify_token(token(dict(METTE, email=email), config), config)


@pytest.mark.parametrize("claims", [{"name": {"first": "Mette"}}, {"institution": ["Valby Skole"]},
                                    {"name": "Mette\x1b[31m Hansen"}, {"unit": "af-syd\n"}, {"name": "M" * 500}])
def test_identity_claims_must_be_short_plain_text(claims):
    with pytest.raises(IdentityError):
        verify_token(token(dict(METTE, **claims)), settings())


def test_issue_token_refuses_in_production():
    with pytest.raises(IdentityError, match="udvikling"):
        issue_token(METTE, settings())


def test_issue_token_in_development_signs_what_development_accepts_within_the_lifetime_cap():
    dev = load_settings({"AF_MODE": "development"})
    payload = jwt.decode(issue_token(METTE, dev), options={"verify_signature": False})
    assert payload["iss"] == dev.identity_issuer and payload["aud"] == dev.identity_audience
    assert verify_token(issue_token(METTE, dev), dev).as_dict() == METTE
    with pytest.raises(IdentityError, match="levetid"):
        issue_token(METTE, dev, ttl_seconds=13 * 3600)
    # production does not accept what the development page signs
    with pytest.raises(IdentityError):
        verify_token(issue_token(METTE, load_settings({"AF_MODE": "development", "AF_IDENTITY_JWT_KEY": KEY})),
                     settings())


# -- asymmetric keys: the intranet signs, we only hold its public key ------------------------------
@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ed_key():
    return ed25519.Ed25519PrivateKey.generate()


def _public_pem(private_key) -> str:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _private_pem(private_key) -> str:
    return private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()


def public_key_settings(private_key, **env):
    values = {"AF_IDENTITY_JWT_KEY": None, "AF_IDENTITY_PUBLIC_KEY": _public_pem(private_key), **env}
    return load_settings(production_env(**values))


def test_rs256_token_checked_with_the_intranets_public_key(rsa_key):
    config = public_key_settings(rsa_key)
    assert config.identity_jwt_algorithms == ("RS256",) and config.identity_jwt_key == ""
    assert verify_token(token(config=config, key=rsa_key, algorithm="RS256"), config).as_dict() == METTE
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(IdentityError, match="ugyldig"):
        verify_token(token(config=config, key=other, algorithm="RS256"), config)


def test_eddsa_token_checked_with_the_intranets_public_key(ed_key, tmp_path):
    pem_file = tmp_path / "intranet.pem"
    pem_file.write_text(_public_pem(ed_key))
    config = load_settings(production_env(AF_IDENTITY_JWT_KEY=None, AF_IDENTITY_PUBLIC_KEY_FILE=str(pem_file)))
    assert config.identity_jwt_algorithms == ("EdDSA",)
    assert verify_token(token(config=config, key=ed_key, algorithm="EdDSA"), config).email == METTE["email"]


def test_public_key_in_an_environment_variable_may_use_escaped_line_breaks(rsa_key):
    config = public_key_settings(rsa_key, AF_IDENTITY_PUBLIC_KEY=_public_pem(rsa_key).replace("\n", "\\n"))
    assert verify_token(token(config=config, key=rsa_key, algorithm="RS256"), config).name == "Mette Hansen"


def test_the_public_key_cannot_be_used_as_an_hmac_secret(rsa_key):
    """Key confusion: an attacker signs HS256 with the (public) PEM as the HMAC key."""
    config = public_key_settings(rsa_key)
    now = int(time.time())
    claims = {**METTE, "iss": config.identity_issuer, "aud": config.identity_audience, "iat": now, "exp": now + 600}
    for header in ({"alg": "HS256", "typ": "JWT"}, {"alg": "none", "typ": "JWT"}):
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = hmac.new(config.identity_public_key.encode(), signing_input.encode(), hashlib.sha256).digest()
        for forged in (f"{signing_input}.{_b64(signature)}", f"{signing_input}."):
            with pytest.raises(IdentityError, match="ugyldig"):
                verify_token(forged, config)


def test_asymmetric_settings_refuse_keys_that_could_sign_or_do_not_fit(rsa_key, ed_key):
    with pytest.raises(ConfigError, match="privat") as caught:
        load_settings(production_env(AF_IDENTITY_JWT_KEY=None, AF_IDENTITY_PUBLIC_KEY=_private_pem(rsa_key)))
    assert "BEGIN" not in str(caught.value)
    with pytest.raises(ConfigError, match="AF_IDENTITY_JWT_KEY"):  # no host of ours may hold a signing key
        public_key_settings(rsa_key, AF_IDENTITY_JWT_KEY=KEY)
    with pytest.raises(ConfigError, match="AF_IDENTITY_JWT_ALGORITHM"):
        public_key_settings(rsa_key, AF_IDENTITY_JWT_ALGORITHM="HS256")
    with pytest.raises(ConfigError, match="AF_IDENTITY_JWT_ALGORITHM"):
        public_key_settings(rsa_key, AF_IDENTITY_JWT_ALGORITHM="EdDSA")
    with pytest.raises(ConfigError, match="AF_IDENTITY_PUBLIC_KEY"):
        public_key_settings(rsa_key, AF_IDENTITY_PUBLIC_KEY="ikke en nøgle")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ConfigError, match="2048"):
        public_key_settings(small)
    with pytest.raises(ConfigError, match="AF_IDENTITY_JWKS_URL"):
        public_key_settings(rsa_key, AF_IDENTITY_JWKS_URL="https://kkintra.test/jwks.json")


def test_development_cannot_sign_without_a_shared_key(rsa_key):
    dev = load_settings({"AF_MODE": "development", "AF_IDENTITY_PUBLIC_KEY": _public_pem(rsa_key)})
    assert dev.identity_jwt_key == ""  # the development HMAC key is not used with a public key
    with pytest.raises(IdentityError):
        issue_token(METTE, dev)


# -- the intranet's JWKS (a loopback HTTP server of our own) ---------------------------------------
class _JWKS:
    def __init__(self, keys):
        self.keys = keys
        self.requests = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                jwks.requests += 1
                if self.path.startswith("/slow"):
                    time.sleep(2)
                body = json.dumps({"keys": jwks.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/jwks.json") -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"


@pytest.fixture(scope="module")
def jwks(rsa_key, ed_key):
    rsa_jwk = dict(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True), kid="rsa-1", use="sig")
    ed_jwk = dict(jwt.algorithms.OKPAlgorithm.to_jwk(ed_key.public_key(), as_dict=True), kid="ed-1", use="sig")
    # a symmetric key in the set must never be usable (it would let anyone who reads the JWKS sign)
    oct_jwk = {"kty": "oct", "kid": "oct-1", "k": _b64(KEY.encode())}
    server = _JWKS([rsa_jwk, ed_jwk, oct_jwk])
    yield server
    server.server.shutdown()
    server.server.server_close()


def jwks_settings(url, **env):
    return load_settings(production_env(**{"AF_IDENTITY_JWT_KEY": None, "AF_IDENTITY_JWKS_URL": url, **env}))


def test_tokens_checked_with_the_intranets_jwks_and_the_keys_are_cached(jwks, rsa_key, ed_key):
    config = jwks_settings(jwks.url("/cached.json"), AF_IDENTITY_JWT_ALGORITHM="RS256,EdDSA")
    before = jwks.requests
    for _ in range(3):
        rs = token(config=config, key=rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})
        assert verify_token(rs, config).as_dict() == METTE
        ed = token(config=config, key=ed_key, algorithm="EdDSA", headers={"kid": "ed-1"})
        assert verify_token(ed, config).email == METTE["email"]
    assert jwks.requests - before == 1


def test_jwks_tokens_with_an_unknown_kid_a_symmetric_key_or_the_wrong_key_are_refused(jwks, rsa_key, ed_key):
    config = jwks_settings(jwks.url("/refusals.json"), AF_IDENTITY_JWT_ALGORITHM="RS256,EdDSA")
    refused = [
        token(config=config, key=rsa_key, algorithm="RS256", headers={"kid": "findes-ikke"}),
        token(config=config, key=rsa_key, algorithm="RS256"),  # no kid
        token(config=config, key=KEY, algorithm="HS256", headers={"kid": "oct-1"}),
        token(config=config, key=ed_key, algorithm="EdDSA", headers={"kid": "rsa-1"}),
    ]
    for forged in refused:
        with pytest.raises(IdentityError, match="ugyldig"):
            verify_token(forged, config)


def test_a_slow_jwks_times_out_and_the_token_is_refused(jwks, rsa_key):
    config = jwks_settings(jwks.url("/slow.json"), AF_IDENTITY_JWKS_TIMEOUT_SECONDS="0.3")
    started = time.monotonic()
    with pytest.raises(IdentityError):
        verify_token(token(config=config, key=rsa_key, algorithm="RS256", headers={"kid": "rsa-1"}), config)
    assert time.monotonic() - started < 1.5


def test_jwks_must_come_over_https_except_from_loopback():
    assert jwks_settings("https://kkintra.test/.well-known/jwks.json").identity_jwks_url
    for url in ("http://kkintra.test/jwks.json", "file:///etc/passwd", "ftp://kkintra.test/jwks"):
        with pytest.raises(ConfigError, match="AF_IDENTITY_JWKS_URL"):
            jwks_settings(url)


# -- the channel boundary -----------------------------------------------------------
@pytest.mark.parametrize(
    "metadata, refusal",
    [
        ({}, inbound.REFUSAL_MISSING),
        ({"identity_token": token(iat=int(time.time()) - 60, exp=int(time.time()) - 1)}, inbound.REFUSAL_EXPIRED),
        ({"identity_token": token(key="x" * 40)}, inbound.REFUSAL_INVALID),
        ({"leader_name": "Mette Hansen", "leader_email": "mette.hansen@buf.kk.dk"}, inbound.REFUSAL_MISSING),
        ("ikke json", inbound.REFUSAL_MISSING),
    ],
)
def test_channel_refuses_without_valid_token_when_required(metadata, refusal):
    prepared = inbound.prepare("hej", metadata, settings(required=True))
    assert prepared.refusal == refusal
    assert prepared.text == "" and prepared.metadata == {}


def test_channel_passes_the_verified_claims_never_the_token_and_nothing_else():
    """Issue 14: the raw token on every stored event could be replayed by anyone who reads the
    tracker store; only its verified claims and a hash of it are kept."""
    import hashlib

    signed = token()
    sent = {"identity_token": signed, "leader_name": "Hacker", "leader_email": "h@evil.dk",
            "identity": {"email": "h@evil.dk", "name": "Hacker"}, "cpr_masked": 0, "too_long": False, "name": "Hacker"}
    prepared = inbound.prepare("hej", sent, settings())
    assert prepared.metadata == {
        "identity": {"name": "Mette Hansen", "email": "mette.hansen@buf.kk.dk", "institution": "Valby Skole",
                     "unit": prepared.metadata["identity"]["unit"]},
        "identity_token_sha256": hashlib.sha256(signed.encode()).hexdigest(),
    }
    assert signed not in repr(prepared.metadata)
    assert identity_from_metadata(prepared.metadata, settings()).name == "Mette Hansen"
    # claims that fail the same checks as a token's are no identity
    assert identity_from_metadata({"identity": {"email": "ikke en mail", "name": "X"}}, settings()) is None


def test_development_mode_drops_invalid_tokens_instead_of_refusing():
    bad = token(key="y" * 40)
    prepared = inbound.prepare("hej", {"identity_token": bad}, settings(required=False))
    assert not prepared.refused and prepared.metadata == {}


@pytest.mark.parametrize(
    "text, expected",
    [
        ('/greet{"leader_name": "Hacker"}', "/greet"),
        ('/inform{"leader_email": "h@evil.dk", "form_id": "vikar"}', '/inform{"form_id": "vikar"}'),
        ('/greet@1.0{"Leader_Institution": "X"}', "/greet@1.0"),
        ('/find_form{"form_id": "vikar"}', '/find_form{"form_id": "vikar"}'),
        ("Jeg hedder Hacker", "Jeg hedder Hacker"),
    ],
)
def test_forged_payloads_lose_identity_entities(text, expected):
    prepared = inbound.prepare(text, {"identity_token": token()}, settings())
    assert prepared.text == expected


# -- the running stack ----------------------------------------------------------------
def test_identity_cannot_be_overridden_in_a_conversation(stack):
    key_settings = load_settings({"AF_MODE": "development", "AF_IDENTITY_JWT_KEY": stack.identity_key})
    token = issue_token(METTE, key_settings)
    sender = "s" + uuid.uuid4().hex  # a letter first: never read as a CPR number
    url = f"{stack.rasa_url}/webhooks/rest/webhook"

    def say(text, **extra_metadata):
        body = {"sender": sender, "message": text, "metadata": {"identity_token": token, **extra_metadata}}
        r = requests.post(url, json=body, timeout=60)
        assert r.status_code == 200, r.text
        return r.json()

    assert "Hej Mette" in json.dumps(say("/greet"), ensure_ascii=False)
    say('/greet{"leader_name": "Hacker", "leader_email": "h@evil.dk", "leader_institution": "Ondskabens Skole"}')
    say("Jeg hedder Jonas Nielsen og er leder på Sundby Skole", leader_name="Jonas Nielsen")
    reply = say("/greet")
    slots = stack.tracker(sender)["slots"]
    assert slots["leader_name"] == "Mette Hansen"
    assert slots["leader_email"] == "mette.hansen@buf.kk.dk"
    assert slots["leader_institution"] == "Valby Skole"
    assert "Hacker" not in json.dumps(reply, ensure_ascii=False)
    assert "Hej Mette" in json.dumps(reply, ensure_ascii=False)


@pytest.mark.parametrize("text", [
    '/inform{"topic": "\\u0030102031234"}',
    '/inform{"leader_email": "h@evil.dk", "topic": "01020312\\u00334"}',
    '/inform{"description": ["010203", {"x": "0102031234"}]}',
])
def test_a_cpr_number_hidden_in_payload_json_escapes_is_masked(text):
    """Security review (issue 14): Rasa decodes the payload's JSON, so a number written
    with \\u escapes must be masked in the decoded value, also after a rewrite."""
    import json as _json

    prepared = inbound.prepare(text, {"identity_token": token()}, settings())
    decoded = _json.loads(prepared.text[prepared.text.index("{"):])
    assert "0102031234" not in _json.dumps(decoded, ensure_ascii=False)
    assert prepared.metadata.get("cpr_masked") == 1
