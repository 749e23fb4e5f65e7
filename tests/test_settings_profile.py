"""Configuration and organisation profile: safe defaults, clear errors."""
import pytest

from actions.profile import ProfileError, load_profile
from actions.settings import PROJECT_ROOT, ConfigError, load_settings


def test_production_is_the_default_and_has_no_development_secrets():
    settings = load_settings({})
    assert settings.mode == "production"
    assert settings.rasa_api_token == ""
    assert settings.identity_jwt_key == ""
    assert settings.servicenow_password == ""
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
    secret.write_text("fra-fil\n")
    assert load_settings({"RASA_API_TOKEN_FILE": str(secret)}).rasa_api_token == "fra-fil"


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
