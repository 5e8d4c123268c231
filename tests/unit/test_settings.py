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


def test_production_refuses_the_development_secret(monkeypatch):
    monkeypatch.setenv("MODERATION_ENV", "production")
    with pytest.raises(ConfigError, match="MODERATION_SECRET_KEY"):
        load_settings()
    monkeypatch.setenv("MODERATION_SECRET_KEY", "a-real-secret-from-the-environment")
    assert load_settings().env == "production"


def test_hub_model_names_are_recognised():
    assert load_settings(model="original").model_is_hub_name
    assert not load_settings(model="/srv/models/minilm").model_is_hub_name
