import pytest

from moderation.config import ConfigError, load_settings


def test_settings_read_the_moderation_prefix(monkeypatch):
    monkeypatch.setenv("MODERATION_SCORING_BATCH_SIZE", "64")
    monkeypatch.setenv("MODERATION_TASK_QUEUE", "q1")
    settings = load_settings()
    assert (settings.scoring_batch_size, settings.task_queue) == (64, "q1")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MODERATION_SCORING_BATCH_SIZE", "many"),
        ("MODERATION_DATABASE_URL", "mysql://x"),
        ("MODERATION_BROKER_URL", "amqp://x"),
        ("MODERATION_MODEL_QUANTIZE", "int4"),
        ("MODERATION_VISIBILITY_TIMEOUT", "1"),
    ],
)
def test_a_bad_value_names_its_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        load_settings()


def test_production_is_the_default_and_refuses_the_development_secret(monkeypatch):
    monkeypatch.delenv("MODERATION_ENV", raising=False)
    monkeypatch.delenv("MODERATION_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="MODERATION_SECRET_KEY must be set"):
        load_settings()
    monkeypatch.setenv("MODERATION_SECRET_KEY", "too-short")
    with pytest.raises(ConfigError, match="at least 32 characters"):
        load_settings()
    monkeypatch.setenv("MODERATION_SECRET_KEY", "a-real-secret-from-the-environment")
    settings = load_settings()
    assert settings.env == "production" and settings.cookie_secure


def test_development_is_said_explicitly(monkeypatch):
    monkeypatch.setenv("MODERATION_ENV", "development")
    monkeypatch.delenv("MODERATION_SECRET_KEY", raising=False)
    settings = load_settings()
    assert settings.env == "development" and not settings.cookie_secure


def test_hub_model_names_are_recognised():
    assert load_settings(model="original").model_is_hub_name
    assert not load_settings(model="/srv/models/minilm").model_is_hub_name
