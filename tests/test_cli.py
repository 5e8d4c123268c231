"""The `moderation` command's site management, on each database backend."""

from click.testing import CliRunner

from moderation.cli import main


def run(database_url, *args):
    result = CliRunner().invoke(main, list(args), env={"MODERATION_DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()


def status_with(client, key):
    return client.get(
        "/api/v1/comments/cmt_x", headers={"Authorization": f"Bearer {key}"}
    ).status_code


def test_create_site_prints_its_key_last_and_the_key_works(client, database_url):
    key = run(database_url, "create-site", "cli-news")[-1]
    assert key.startswith("msk_")
    assert status_with(client, key) == 404  # authenticated; the comment does not exist


def test_a_duplicate_site_name_is_refused(client, database_url):
    run(database_url, "create-site", "cli-news")
    result = CliRunner().invoke(
        main, ["create-site", "cli-news"], env={"MODERATION_DATABASE_URL": database_url}
    )
    assert result.exit_code != 0 and "exists already" in result.output


def test_rotate_key_retires_the_old_key(client, database_url):
    old = run(database_url, "create-site", "cli-news")[-1]
    new = run(database_url, "rotate-key", "cli-news")[-1]
    assert new != old
    assert status_with(client, old) == 401
    assert status_with(client, new) == 404


def test_an_unknown_site_is_named_before_any_password_is_asked(client, database_url):
    result = CliRunner().invoke(
        main,
        ["create-moderator", "ann@news.example", "--site", "no-such-site"],
        env={"MODERATION_DATABASE_URL": database_url},
        input="",
    )
    assert result.exit_code != 0
    assert "no site named 'no-such-site'" in result.output
    assert "Password" not in result.output


def test_the_password_is_asked_once_the_site_exists(client, database_url):
    run(database_url, "create-site", "cli-news")
    result = CliRunner().invoke(
        main,
        ["create-moderator", "ann@news.example", "--site", "cli-news"],
        env={"MODERATION_DATABASE_URL": database_url},
        input="a-long-password\na-long-password\n",
    )
    assert result.exit_code == 0, result.output
    assert "Password" in result.output and "created moderator" in result.output


PRODUCTION_WITHOUT_SECRET = {"MODERATION_ENV": None, "MODERATION_SECRET_KEY": None}


def test_model_commands_need_no_web_secret_in_production(tmp_path):
    (tmp_path / "meta.json").write_text("{}")
    env = {**PRODUCTION_WITHOUT_SECRET, "MODERATION_MODEL": str(tmp_path)}
    result = CliRunner().invoke(main, ["model", "build"], env=env)
    assert result.exit_code == 0, result.output
    assert "model exists" in result.output


def test_the_service_s_own_commands_still_refuse_production_without_a_secret(database_url):
    env = {**PRODUCTION_WITHOUT_SECRET, "MODERATION_DATABASE_URL": database_url}
    result = CliRunner().invoke(main, ["create-site", "cli-news"], env=env)
    assert result.exit_code != 0
    assert "MODERATION_SECRET_KEY must be set to a real secret" in result.output
