"""Configuration and organisation profile: safe defaults, clear errors."""
import pytest

from af_core import settings as settings_module
from af_core.profile import ProfileError, load_profile
from af_core.settings import PROJECT_ROOT, ConfigError, load_settings
from tests.production_env import production_env


def test_production_is_the_default_and_has_no_development_secrets():
    settings = load_settings(production_env(AF_MODE=None))
    assert settings.mode == "production"
    assert settings.rasa_api_token == production_env()["RASA_API_TOKEN"]
    assert settings.identity_jwt_key == production_env()["AF_IDENTITY_JWT_KEY"]
    assert settings.servicenow_password == "" and settings.servicenow_username == ""
    assert settings.web_session_key == ""
    assert settings.identity_required is True
    assert settings.bind_host == "127.0.0.1"


def test_development_mode_uses_documented_defaults():
    settings = load_settings({"AF_MODE": "development"})
    assert settings.rasa_api_token == "udvikling-rasa-token"
    assert settings.servicenow_url == "http://127.0.0.1:8090"
    assert settings.start_emulator is True
    assert settings.identity_required is False


def test_secret_can_come_from_a_file(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("fra-fil-" + "x" * 32 + "\n")
    settings = load_settings(production_env(RASA_API_TOKEN=None, RASA_API_TOKEN_FILE=str(secret)))
    assert settings.rasa_api_token == "fra-fil-" + "x" * 32


@pytest.mark.parametrize(
    "env",
    [
        {"AF_MODE": "test"},
        {"AF_RASA_PORT": "abc"},
        {"AF_MAX_MESSAGE_LENGTH": "0"},
        {"AF_IDENTITY_REQUIRED": "maybe"},
        {"AF_PROFILE": "findes-ikke"},
        {"AF_TRACKER_STORE": "mongo"},
    ],
)
def test_invalid_values_are_refused_with_a_clear_message(env):
    with pytest.raises(ConfigError):
        load_settings(env)


def test_buf_profile_routes_institution_and_topic_to_an_assignment_group():
    profile = load_profile(PROJECT_ROOT / "profiles" / "buf")
    assert profile.unit_for_institution("Valby Skole")["name"] == "AF Syd"
    assert profile.unit_for_institution("valby skole")["name"] == "AF Syd"
    assert profile.unit_for_institution("Ukendt Institution")["id"] == "af-midt"
    assert profile.assignment_group("Sundby Skole", "loen") == "af-oest-loen"
    assert profile.forms_page_url.startswith("https://kkintra.kk.dk/buf/")


def test_profile_with_a_broken_routing_table_is_refused(tmp_path):
    text = (PROJECT_ROOT / "profiles" / "buf" / "profile.yml").read_text(encoding="utf-8")
    (tmp_path / "profile.yml").write_text(text.replace('"Valby Skole": af-syd', '"Valby Skole": af-mars'))
    with pytest.raises(ProfileError, match="af-mars"):
        load_profile(tmp_path)


def test_socketio_goes_through_redis_exactly_when_the_replicas_share_redis():
    assert load_settings({"AF_MODE": "development"}).socketio_manager == "local"
    scaled = load_settings({"AF_MODE": "development", "AF_LOCK_STORE": "redis", "AF_REDIS_PASSWORD": "a/b@c"})
    assert scaled.socketio_manager == "redis"
    assert scaled.redis_url == "redis://:a%2Fb%40c@127.0.0.1:6379/0"  # the password cannot break the URL
    one_replica = load_settings({"AF_MODE": "development", "AF_LOCK_STORE": "redis", "AF_SOCKETIO_MANAGER": "local"})
    assert one_replica.socketio_manager == "local"
    with pytest.raises(ConfigError, match="AF_SOCKETIO_MANAGER"):
        load_settings({"AF_MODE": "development", "AF_SOCKETIO_MANAGER": "kafka"})


# -- production refuses development keys, short keys and missing secrets (security review) --------
def _refusal(env) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    return str(caught.value)


def test_production_without_its_secrets_refuses_to_start_and_names_them():
    for env in ({}, {"AF_MODE": "production"}):
        message = _refusal(env)
        for name in ("RASA_API_TOKEN", "AF_IDENTITY_JWT_KEY", "AF_IDENTITY_ISSUER", "AF_IDENTITY_AUDIENCE"):
            assert name in message, (name, message)


DEV_VALUES = [
    ("RASA_API_TOKEN", settings_module.DEV_RASA_API_TOKEN, {}),
    ("AF_IDENTITY_JWT_KEY", settings_module.DEV_IDENTITY_JWT_KEY, {}),
    ("AF_WEB_SESSION_KEY", settings_module.DEV_WEB_SESSION_KEY, {}),
    ("AF_IDENTITY_ISSUER", settings_module.DEV_IDENTITY_ISSUER, {}),
    ("AF_IDENTITY_AUDIENCE", settings_module.DEV_IDENTITY_AUDIENCE, {}),
    ("SERVICENOW_PASSWORD", settings_module.DEV_SERVICENOW_PASSWORD,
     {"SERVICENOW_URL": "https://kk.service-now.test", "SERVICENOW_USERNAME": "af-assistent-test-bruger"}),
    ("SERVICENOW_USERNAME", settings_module.DEV_SERVICENOW_USERNAME,
     {"SERVICENOW_URL": "https://kk.service-now.test", "SERVICENOW_PASSWORD": "test-adgangskode-0123456789"}),
    ("SERVICENOW_CLIENT_SECRET", settings_module.DEV_SERVICENOW_CLIENT_SECRET,
     {"SERVICENOW_URL": "https://kk.service-now.test", "SERVICENOW_CLIENT_ID": "af-assistent-test-klient"}),
    # a development value under another name is just as public
    ("AF_WEB_SESSION_KEY", settings_module.DEV_IDENTITY_JWT_KEY, {}),
    ("AF_POSTGRES_PASSWORD", settings_module.DEV_SERVICENOW_PASSWORD, {}),
]


@pytest.mark.parametrize("name, value, extra", DEV_VALUES)
def test_production_refuses_an_explicitly_set_development_value(name, value, extra):
    message = _refusal(production_env(**{name: value}, **extra))
    assert name in message and "udvikling" in message
    assert value not in message  # the secret is never echoed


def test_production_refuses_a_development_value_from_a_file(tmp_path):
    path = tmp_path / "rasa-token"
    path.write_text(settings_module.DEV_RASA_API_TOKEN + "\n")
    message = _refusal(production_env(RASA_API_TOKEN=None, RASA_API_TOKEN_FILE=str(path)))
    assert "RASA_API_TOKEN_FILE" in message and settings_module.DEV_RASA_API_TOKEN not in message


@pytest.mark.parametrize("name, value", [
    ("AF_IDENTITY_JWT_KEY", "k"),
    ("AF_IDENTITY_JWT_KEY", "kort-test-noegle-31-tegn-xxxxxx"),
    ("RASA_API_TOKEN", "kort-test-token"),
    ("AF_WEB_SESSION_KEY", "kort-test-sessionsnoegle"),
])
def test_production_refuses_a_short_key(name, value):
    message = _refusal(production_env(**{name: value}))
    assert name in message and "32" in message
    assert len(value) < 3 or value not in message  # a one-letter "key" is in any sentence


def test_an_hs512_identity_key_must_be_as_long_as_the_hash():
    message = _refusal(production_env(AF_IDENTITY_JWT_ALGORITHM="HS512", AF_IDENTITY_JWT_KEY="test-" + "k" * 40))
    assert "AF_IDENTITY_JWT_KEY" in message and "64" in message


def test_production_with_valid_values_starts_and_uses_no_development_value():
    settings = load_settings(production_env(AF_WEB_SESSION_KEY="test-sessionsnoegle-" + "s" * 20))
    dev_values = {v for k, v in vars(settings_module).items() if k.startswith("DEV_") and isinstance(v, str)}
    used = {settings.rasa_api_token, settings.identity_jwt_key, settings.web_session_key, settings.identity_issuer,
            settings.identity_audience, settings.servicenow_username, settings.servicenow_password,
            settings.servicenow_client_id, settings.servicenow_client_secret}
    assert not used & dev_values
    assert settings.identity_jwt_algorithms == ("HS256",)


def test_servicenow_credentials_are_required_in_production_when_servicenow_is_configured():
    url = {"SERVICENOW_URL": "https://kk.service-now.test"}
    message = _refusal(production_env(**url))
    assert "SERVICENOW_USERNAME" in message and "SERVICENOW_CLIENT_ID" in message
    half_oauth = _refusal(production_env(**url, SERVICENOW_CLIENT_ID="af-assistent-test-klient"))
    assert "SERVICENOW_CLIENT_SECRET" in half_oauth
    oauth = load_settings(production_env(**url, SERVICENOW_CLIENT_ID="af-assistent-test-klient",
                                         SERVICENOW_CLIENT_SECRET="test-klienthemmelighed-0123456789"))
    assert oauth.servicenow_auth == "oauth"
    basic = load_settings(production_env(**url, SERVICENOW_USERNAME="af-assistent-test-bruger",
                                         SERVICENOW_PASSWORD="test-adgangskode-0123456789"))
    assert basic.servicenow_auth == "basic"
    # without SERVICENOW_URL the requests wait in the outbox; no credentials needed yet
    assert load_settings(production_env()).servicenow_url == ""


def test_the_web_server_needs_its_session_key_in_production_only():
    from af_core.settings import require_web_session_key

    with pytest.raises(ConfigError, match="AF_WEB_SESSION_KEY"):
        require_web_session_key(load_settings(production_env()))
    require_web_session_key(load_settings(production_env(AF_WEB_SESSION_KEY="test-sessionsnoegle-" + "s" * 20)))
    require_web_session_key(load_settings({"AF_MODE": "development"}))


def test_identity_is_not_required_means_no_identity_secret_is_required():
    settings = load_settings(production_env(AF_IDENTITY_REQUIRED="false", AF_IDENTITY_JWT_KEY=None,
                                            AF_IDENTITY_ISSUER=None, AF_IDENTITY_AUDIENCE=None))
    assert settings.identity_required is False and settings.identity_jwt_key == ""


@pytest.mark.parametrize("algorithm", ["none", "None", "HS256,none", "HS256,RS256", "RS256,HS512", "HS1", "rot13"])
def test_identity_algorithms_are_never_none_never_mixed_and_known(algorithm):
    for mode in ("production", "development"):
        env = production_env(AF_MODE=mode, AF_IDENTITY_JWT_ALGORITHM=algorithm)
        assert "AF_IDENTITY_JWT_ALGORITHM" in _refusal(env)


def test_development_defaults_sign_and_check_identity_tokens_for_the_demo_page():
    settings = load_settings({"AF_MODE": "development"})
    assert settings.identity_jwt_key == settings_module.DEV_IDENTITY_JWT_KEY
    assert settings.identity_issuer == settings_module.DEV_IDENTITY_ISSUER
    assert settings.identity_audience == settings_module.DEV_IDENTITY_AUDIENCE
    assert settings.identity_max_lifetime_seconds == 12 * 3600


def test_identity_lifetime_cannot_be_set_above_twelve_hours():
    assert "AF_IDENTITY_MAX_LIFETIME_SECONDS" in _refusal(
        production_env(AF_IDENTITY_MAX_LIFETIME_SECONDS=str(13 * 3600)))


@pytest.mark.parametrize("domains", ["buf.kk.dk,@evil", "buf kk dk", "kk"])
def test_email_domain_allow_list_must_hold_domains(domains):
    assert "AF_IDENTITY_EMAIL_DOMAINS" in _refusal(production_env(AF_IDENTITY_EMAIL_DOMAINS=domains))


def test_email_domain_allow_list_is_read_in_lower_case():
    settings = load_settings(production_env(AF_IDENTITY_EMAIL_DOMAINS="BUF.kk.dk, kk.dk"))
    assert settings.identity_email_domains == ("buf.kk.dk", "kk.dk")
