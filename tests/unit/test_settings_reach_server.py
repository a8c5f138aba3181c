"""Every documented setting reaches the server, through one path (issue 17, point 1).

The table of variables in docs/architecture.md#configuration is the list users read; each
variable it says the server uses is set here to a value other than its default, and the
settings ``WorkbenchApp`` builds must carry it. A trait a user set wins over its variable.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from traitlets.config import Config

from workbench.config import Settings
from workbench_ext.app import WorkbenchApp

DOCS = Path(__file__).resolve().parents[2] / "docs"

#: a value other than the default for each variable the server reads, and where the
#: server's settings keep it
SAMPLES: dict[str, tuple[str, Callable[[Settings], object], object]] = {
    "WORKBENCH_HOME": ("/srv/wb-home", lambda s: s.home, Path("/srv/wb-home")),
    "WORKBENCH_DB_URL": (
        "postgresql+psycopg://u@db/wb",
        lambda s: s.db_url,
        "postgresql+psycopg://u@db/wb",
    ),
    "WORKBENCH_STORE": ("/srv/wb-store", lambda s: s.store_root, Path("/srv/wb-store")),
    "WORKBENCH_INSTANCE": ("server-b", lambda s: s.instance, "server-b"),
    "WORKBENCH_BACKEND": ("fake", lambda s: s.backend, "fake"),
    "WORKBENCH_WORKSPACE_API_URL": (
        "http://wb.example:8888/",
        lambda s: s.workspace_api_url,
        "http://wb.example:8888/",
    ),
    "WORKBENCH_AUTO_CONVERT": ("1", lambda s: s.auto_convert, True),
    "WORKBENCH_TRAINING_CONCURRENCY": ("3", lambda s: s.training.concurrency, 3),
    "WORKBENCH_TRAINING_CPUS": ("1.5", lambda s: s.training.cpus, 1.5),
    "WORKBENCH_TRAINING_MEMORY_MB": ("300", lambda s: s.training.memory_mb, 300),
    "WORKBENCH_TRAINING_GPUS": ("2", lambda s: s.training.gpus, 2),
    "WORKBENCH_TRAINING_OUTBOUND": ("yes", lambda s: s.training_outbound, True),
    "WORKBENCH_WORKSPACE_OUTBOUND": ("0", lambda s: s.workspace_outbound, False),
    "WORKBENCH_QUOTA_REPLICAS": ("5", lambda s: s.quotas.replicas, 5),
    "WORKBENCH_QUOTA_MEMORY_MB": ("1024", lambda s: s.quotas.memory_mb, 1024),
    "WORKBENCH_QUOTA_UPLOAD_BYTES": ("4096", lambda s: s.quotas.upload_bytes, 4096),
    "WORKBENCH_ENVS_DIR": ("/srv/envs", lambda s: s.env_build.envs_dir, Path("/srv/envs")),
    "WORKBENCH_ENV_WHEELS": ("/srv/wheels", lambda s: s.env_build.wheels_dir, Path("/srv/wheels")),
    "WORKBENCH_EXTRA_CA_BUNDLE": (
        "/srv/ca.pem",
        lambda s: s.env_build.extra_ca_bundle,
        Path("/srv/ca.pem"),
    ),
    "WORKBENCH_PIP_INDEX_URL": (
        "https://index.invalid/simple",
        lambda s: s.env_build.pip_index_url,
        "https://index.invalid/simple",
    ),
}

#: variables the docs name that are no setting of a server: what a container or a build
#: gets, and the test suite's own
NOT_SETTINGS = {
    "WORKBENCH_ENV_IMAGE": "the build argument an algorithm image starts FROM",
    "WORKBENCH_ENV_HASH": "the label an environment image carries",
    "WORKBENCH_WORKSPACE": "a workspace container's own id",
    "WORKBENCH_TEST_PG_URL": "the suite's PostgreSQL",
    "WORKBENCH_TEST_REGISTRY": "the suite's image registry",
    "WORKBENCH_TEST_BASE_IMAGE": "the suite's base image",
    "WORKBENCH_TEST_ENV_TAG": "the tag of the suite's environment images",
    "WORKBENCH_CHROMIUM": "the browser tests' Chromium",
}


def configuration_table() -> dict[str, str]:
    """Each variable of the configuration table, and who the table says uses it."""
    text = (DOCS / "architecture.md").read_text()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    table = section.split("| Variable | Used by | Meaning |", 1)[1].split("\n\n", 1)[0]
    used: dict[str, str] = {}
    for row in table.splitlines():
        cells = row.split("|")
        if len(cells) > 3:
            for name in re.findall(r"`(WORKBENCH_[A-Z_]+)`", cells[1]):
                used[name] = cells[2]
    return used


def server_variables() -> set[str]:
    return {name for name, users in configuration_table().items() if "server" in users}


def test_the_table_names_every_variable_the_server_reads():
    assert server_variables() == set(SAMPLES)


def test_every_variable_the_docs_name_is_in_the_table_or_is_no_setting():
    named = {
        name
        for path in [*DOCS.glob("*.md"), DOCS.parent / "README.md"]
        for name in re.findall(r"\bWORKBENCH_[A-Z0-9_]*[A-Z0-9]\b", path.read_text())
    }
    missing = named - set(configuration_table()) - set(NOT_SETTINGS)
    assert not missing, f"documented outside the configuration table only: {sorted(missing)}"


@pytest.mark.parametrize("variable", sorted(SAMPLES))
def test_a_documented_variable_reaches_the_server(variable: str):
    value, where, expected = SAMPLES[variable]
    default = WorkbenchApp().workbench_settings({})
    assert where(default) != expected, "the sample must differ from the default"
    settings = WorkbenchApp().workbench_settings({variable: value})
    assert where(settings) == expected
    assert settings == Settings.from_env({variable: value})


def test_a_trait_a_user_set_wins_over_its_variable(tmp_path: Path):
    config = Config(
        {
            "WorkbenchApp": {
                "home": str(tmp_path / "trait-home"),
                "backend": "fake",
                "max_workspace_cpus": 2.0,
                "max_archive_files": 10,
            }
        }
    )
    env = {
        "WORKBENCH_HOME": str(tmp_path / "env-home"),
        "WORKBENCH_BACKEND": "docker",
        "WORKBENCH_AUTO_CONVERT": "1",
    }
    settings = WorkbenchApp(config=config).workbench_settings(env)
    assert settings.home == tmp_path / "trait-home"
    # the registry follows the home the trait names, not the variable's
    assert settings.db_url == f"sqlite:///{tmp_path / 'trait-home' / 'registry.db'}"
    assert settings.backend == "fake"
    assert settings.workspace_limits.max_cpus == 2.0
    assert settings.workspace_limits.max_memory_mb == 16 * 1024  # unset: its default
    assert settings.archive_limits.max_files == 10
    assert settings.auto_convert is True  # no trait: the variable's


def test_a_wrong_yes_no_value_names_the_variable():
    from workbench.errors import InvalidInput

    with pytest.raises(InvalidInput, match="WORKBENCH_AUTO_CONVERT='maybe'"):
        WorkbenchApp().workbench_settings({"WORKBENCH_AUTO_CONVERT": "maybe"})
