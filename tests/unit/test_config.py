"""Settings from the environment."""

from __future__ import annotations

from workbench.config import Settings, default_owner


def test_embedded_defaults_live_under_home(tmp_path):
    s = Settings.from_env({"WORKBENCH_HOME": str(tmp_path)})
    assert s.db_url == f"sqlite:///{tmp_path / 'registry.db'}"
    assert s.store_root == tmp_path / "store"
    assert s.credentials_file == tmp_path / "credentials.json"


def test_a_team_points_at_postgres_and_a_shared_store(tmp_path):
    s = Settings.from_env(
        {
            "WORKBENCH_HOME": str(tmp_path / "me"),
            "WORKBENCH_DB_URL": "postgresql+psycopg://u@db/wb",
            "WORKBENCH_STORE": str(tmp_path / "shared"),
        }
    )
    assert s.db_url == "postgresql+psycopg://u@db/wb"
    assert s.store_root == tmp_path / "shared"
    assert s.credentials_file == tmp_path / "me" / "credentials.json"


def test_default_owner_prefers_the_hub_user(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_USER", "ada")
    assert default_owner() == "ada"
    monkeypatch.delenv("JUPYTERHUB_USER")
    import getpass

    assert default_owner() == getpass.getuser()


def test_server_builds_read_the_same_variables_as_the_envs_command(tmp_path):
    s = Settings.from_env(
        {
            "WORKBENCH_HOME": str(tmp_path),
            "WORKBENCH_EXTRA_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt",
            "WORKBENCH_ENV_WHEELS": "/opt/wheels",
            "WORKBENCH_PIP_INDEX_URL": "https://index.invalid/simple",
        }
    )
    assert str(s.env_build.extra_ca_bundle) == "/etc/ssl/certs/ca-certificates.crt"
    assert str(s.env_build.wheels_dir) == "/opt/wheels"
    assert s.env_build.pip_index_url == "https://index.invalid/simple"
    assert s.env_build.envs_dir is None
