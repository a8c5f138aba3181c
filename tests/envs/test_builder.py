"""The build context EnvBuilder writes, and how build() drives a backend (a mock here)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from unittest.mock import create_autospec

import pytest

from workbench.backends.base import Backend, ImageInfo
from workbench.environments.builder import HASH_VARIABLE, EnvBuilder, build_workbench_wheel
from workbench.environments.definition import EnvDefinition, load_definition
from workbench.errors import (
    BaseImageMissing,
    BuildFailed,
    ImageNotFound,
    LocalWheelMissing,
    WorkbenchWheelUnavailable,
)

TORCH_WHEEL = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"


def image(ref: str, env: Mapping[str, str] | None = None) -> ImageInfo:
    return ImageInfo(
        id=f"sha256:{abs(hash(ref)):064x}"[:71],
        tags=(ref,),
        entrypoint=None,
        cmd=("/bin/bash",),
        env=dict(env or {}),
        exposed_ports=(),
        size=1,
    )


@pytest.fixture
def backend() -> Backend:
    mock = create_autospec(Backend, instance=True)
    mock.inspect_image.side_effect = lambda ref: (
        image(ref) if ref.startswith("workbench/base") else _missing(ref)
    )
    return mock


def _missing(ref: str) -> ImageInfo:
    raise ImageNotFound(f"no {ref}")


@pytest.fixture
def python_env(envs_root: Path) -> EnvDefinition:
    return load_definition(envs_root, "python")


@pytest.fixture
def pytorch_env(envs_root: Path) -> EnvDefinition:
    return load_definition(envs_root, "pytorch")


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    (folder / TORCH_WHEEL).write_bytes(b"not really a wheel")
    return folder


def test_the_dockerfile_of_the_python_env(backend, fake_wheel, python_env, tmp_path):
    builder = EnvBuilder(backend, workbench_wheel=fake_wheel)

    context = builder.write_context(python_env, tmp_path / "ctx")

    dockerfile = (context.path / "Dockerfile").read_text()
    assert dockerfile == context.dockerfile
    assert dockerfile.count("FROM ") == 3
    assert "FROM workbench/base:bookworm AS system\n" in dockerfile
    assert "RUN useradd --uid 1000 --user-group --create-home" in dockerfile
    assert "RUN python3 -m venv /opt/venv\n" in dockerfile
    assert "RUN /opt/venv/bin/pip install --requirement /tmp/requirements.txt\n" in dockerfile
    assert "COPY --from=venv --chown=1000:1000 /opt/venv /opt/venv\n" in dockerfile
    # the server's extensions are off: their packages are not in the image to validate them
    assert "rm /opt/venv/etc/jupyter/jupyter_server_config.d/workbench_ext.json" in dockerfile
    assert dockerfile.endswith('CMD ["start-jupyterlab"]\n')
    for line in ("USER workbench\n", "WORKDIR /workspace\n", "EXPOSE 8888\n"):
        assert line in dockerfile
    assert "PIP_CERT=/etc/ssl/certs/ca-certificates.crt" in dockerfile
    # nothing optional was asked for
    assert "extra-ca" not in dockerfile
    assert "/wheels" not in dockerfile
    assert "PIP_INDEX_URL" not in dockerfile
    assert context.build_args == {}
    assert sorted(p.name for p in context.path.iterdir()) == [
        "Dockerfile",
        "requirements.txt",
        "start-jupyterlab",
        "workbench",
    ]
    assert (context.path / "workbench" / fake_wheel.name).read_bytes() == fake_wheel.read_bytes()


def test_the_start_script_takes_token_and_base_url_from_the_environment(
    backend, fake_wheel, python_env, tmp_path
):
    context = EnvBuilder(backend, workbench_wheel=fake_wheel).write_context(python_env, tmp_path)

    start = context.path / "start-jupyterlab"
    assert os.access(start, os.X_OK)
    text = start.read_text()
    assert "exec jupyter lab --ip=0.0.0.0 --port=8888 --no-browser" in text
    assert '--ServerApp.base_url="${JUPYTER_BASE_URL:-/}"' in text
    assert "JUPYTER_TOKEN" in text  # documented: Jupyter Server reads it itself
    done = subprocess.run(["sh", "-n", str(start)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_requirements_pin_the_servers_widgets_and_carry_the_model_servers_dependencies(
    backend, fake_wheel, python_env, tmp_path
):
    context = EnvBuilder(backend, workbench_wheel=fake_wheel).write_context(python_env, tmp_path)

    anywidget = metadata.version("anywidget").split(".")
    lines = (context.path / "requirements.txt").read_text().splitlines()
    assert lines[1:] == list(context.requirements)
    assert context.requirements[: len(python_env.python.packages)] == python_env.python.packages
    assert f"anywidget~={anywidget[0]}.{anywidget[1]}.0" in context.requirements
    assert any(r.startswith("ipywidgets~=") for r in context.requirements)
    assert "httpx>=0.27" in context.requirements  # the client's
    # the model server's, without their markers
    assert {"numpy>=1.26", "uvloop>=0.21"} <= set(context.requirements)
    for left_out in ("sqlalchemy", "psycopg", "workbench", "anywidget<"):  # other extras'
        assert not any(r.startswith(left_out) for r in context.requirements), left_out


def test_an_extra_ca_bundle_is_copied_and_trusted(backend, fake_wheel, python_env, tmp_path):
    bundle = tmp_path / "corp-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    builder = EnvBuilder(backend, workbench_wheel=fake_wheel, extra_ca_bundle=bundle)

    context = builder.write_context(python_env, tmp_path / "ctx")

    assert (context.path / "extra-ca.crt").read_text() == bundle.read_text()
    assert (
        "COPY extra-ca.crt /usr/local/share/ca-certificates/workbench-extra-ca.crt\n"
        "RUN update-ca-certificates\n"
    ) in context.dockerfile
    # before pip runs: the CA is in the system stage that the venv stage starts from
    assert context.dockerfile.index("update-ca-certificates") < context.dockerfile.index(
        "pip install"
    )


def test_a_wheels_folder_is_linked_in_and_used_as_find_links(
    backend, fake_wheel, python_env, wheels, tmp_path
):
    builder = EnvBuilder(backend, workbench_wheel=fake_wheel, wheels_dir=wheels)

    context = builder.write_context(python_env, tmp_path / "ctx")

    copied = context.path / "wheels" / TORCH_WHEEL
    assert copied.read_bytes() == (wheels / TORCH_WHEEL).read_bytes()
    assert not copied.is_symlink()
    assert copied.stat().st_ino == (wheels / TORCH_WHEEL).stat().st_ino  # a hard link
    assert "COPY wheels/ /wheels/\n" in context.dockerfile
    assert "pip install --find-links /wheels --requirement" in context.dockerfile
    assert "--no-index" not in context.dockerfile  # python takes nothing only locally


def test_local_wheels_are_installed_without_an_index(
    backend, fake_wheel, pytorch_env, wheels, tmp_path
):
    builder = EnvBuilder(backend, workbench_wheel=fake_wheel, wheels_dir=wheels)

    context = builder.write_context(pytorch_env, tmp_path / "ctx")

    assert (
        "RUN /opt/venv/bin/pip install --no-deps --no-index --find-links /wheels 'torch==2.13.0'\n"
    ) in context.dockerfile
    assert context.dockerfile.index("--no-index") < context.dockerfile.index("--requirement")


def test_pytorch_without_a_wheels_folder_says_to_pass_one(backend, fake_wheel, pytorch_env):
    builder = EnvBuilder(backend, workbench_wheel=fake_wheel)

    with pytest.raises(LocalWheelMissing) as caught:
        list(builder.build(pytorch_env, "workbench/env-pytorch:test"))

    assert "torch==2.13.0" in caught.value.message
    assert "no wheels folder was given" in caught.value.message
    assert "--wheels DIR" in caught.value.message
    backend.build_image.assert_not_called()


@pytest.mark.parametrize("present", [[], ["torch-2.12.0+cpu-cp311-cp311-linux_x86_64.whl"]])
def test_pytorch_with_a_folder_lacking_the_pinned_torch(
    backend, fake_wheel, pytorch_env, tmp_path, present
):
    folder = tmp_path / "w"
    folder.mkdir()
    for name in present:
        (folder / name).touch()
    builder = EnvBuilder(backend, workbench_wheel=fake_wheel, wheels_dir=folder)

    with pytest.raises(LocalWheelMissing, match=f"the wheels folder {folder} holds no wheel"):
        builder.write_context(pytorch_env, tmp_path / "ctx")


def configured_find_links() -> list[Path]:
    """The folders pip's configuration (files and PIP_FIND_LINKS) names as find-links."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    )
    values = [os.environ.get("PIP_FIND_LINKS", "")]
    for line in done.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.endswith("find-links"):
            values.append(value.strip("'\""))
    return [Path(v) for value in values for v in value.split() if Path(v).is_dir()]


def test_pytorch_with_this_machines_torch_wheel(backend, fake_wheel, pytorch_env, tmp_path):
    folders = [f for f in configured_find_links() if list(f.glob("torch-2.13.0*.whl"))]
    if not folders:
        pytest.skip("pip's configured find-links hold no torch 2.13.0 wheel")
    builder = EnvBuilder(backend, workbench_wheel=fake_wheel, wheels_dir=folders[0])

    context = builder.write_context(pytorch_env, tmp_path / "ctx")

    assert list((context.path / "wheels").glob("torch-2.13.0*.whl"))


def test_a_pip_index_is_a_build_argument_not_kept_in_the_image(
    backend, fake_wheel, python_env, tmp_path
):
    url = "https://pypi.example.test/simple"
    builder = EnvBuilder(backend, workbench_wheel=fake_wheel, pip_index_url=url)

    context = builder.write_context(python_env, tmp_path / "ctx")

    assert context.build_args == {"PIP_INDEX_URL": url}
    assert "ARG PIP_INDEX_URL\n" in context.dockerfile
    assert url not in context.dockerfile
    final_stage = context.dockerfile.rsplit("FROM ", 1)[1]
    assert "PIP_INDEX_URL" not in final_stage


def test_the_digest_changes_with_what_goes_in(backend, fake_wheel, python_env, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("one")

    def digest(name: str, **options: object) -> str:
        builder = EnvBuilder(backend, workbench_wheel=fake_wheel, **options)  # type: ignore[arg-type]
        return builder.write_context(python_env, tmp_path / name).digest

    plain = digest("a")
    assert digest("b") == plain
    with_ca = digest("c", extra_ca_bundle=bundle)
    assert with_ca != plain
    bundle.write_text("two")
    assert digest("d", extra_ca_bundle=bundle) != with_ca
    assert digest("e", pip_index_url="https://x.test/simple") != plain


def test_a_missing_base_image_points_to_the_script(fake_wheel, python_env):
    backend = create_autospec(Backend, instance=True)
    backend.inspect_image.side_effect = _missing

    with pytest.raises(BaseImageMissing) as caught:
        list(EnvBuilder(backend, workbench_wheel=fake_wheel).build(python_env, "x:y"))

    assert "scripts/base-image" in caught.value.message
    assert "workbench/base:bookworm" in caught.value.message
    backend.build_image.assert_not_called()


def test_build_sends_the_context_and_the_hash_to_the_backend(backend, fake_wheel, python_env):
    seen: dict[str, object] = {}

    def build_image(context: Path, tag: str, **kwargs: object) -> Iterator[str]:
        seen.update(kwargs, tag=tag, files=sorted(p.name for p in context.iterdir()))
        yield "Step 1/24 : FROM workbench/base:bookworm AS system"
        yield "Successfully tagged workbench/env-python:test"

    backend.build_image.side_effect = build_image
    builder = EnvBuilder(backend, workbench_wheel=fake_wheel, pip_index_url="https://i.test/s")

    lines = list(builder.build(python_env, "workbench/env-python:test"))

    assert seen["tag"] == "workbench/env-python:test"
    assert "Dockerfile" in seen["files"]  # type: ignore[operator]
    build_args = seen["build_args"]
    assert build_args["PIP_INDEX_URL"] == "https://i.test/s"  # type: ignore[index]
    assert len(build_args[HASH_VARIABLE]) == 64  # type: ignore[index]
    assert lines[0].startswith("base image workbench/base:bookworm (sha256:")
    assert "Successfully tagged workbench/env-python:test" in lines
    assert lines[-1] == "built workbench/env-python:test"


def test_build_skips_an_image_carrying_the_same_hash(backend, fake_wheel, python_env):
    built: dict[str, str] = {}

    def build_image(context: Path, tag: str, **kwargs: object) -> Iterator[str]:
        built[tag] = kwargs["build_args"][HASH_VARIABLE]  # type: ignore[index]
        yield "built"

    backend.build_image.side_effect = build_image
    builder = EnvBuilder(backend, workbench_wheel=fake_wheel)
    list(builder.build(python_env, "t:1"))
    backend.inspect_image.side_effect = lambda ref: image(
        ref, {HASH_VARIABLE: built["t:1"]} if ref == "t:1" else None
    )

    again = list(builder.build(python_env, "t:1"))
    forced = list(builder.build(python_env, "t:1", force=True))

    assert any("t:1 is up to date" in line for line in again)
    assert "built" not in again
    assert backend.build_image.call_count == 2
    assert forced[-1] == "built t:1"


def test_a_failed_build_raises_the_backends_build_failed(backend, fake_wheel, python_env):
    def build_image(context: Path, tag: str, **kwargs: object) -> Iterator[str]:
        yield "Step 11/24 : RUN /opt/venv/bin/pip install --requirement /tmp/requirements.txt"
        raise BuildFailed("building x failed: ... No matching distribution found for numpy")

    backend.build_image.side_effect = build_image

    with pytest.raises(BuildFailed, match="No matching distribution"):
        list(EnvBuilder(backend, workbench_wheel=fake_wheel).build(python_env, "x:y"))


def test_the_constructor_checks_its_paths(backend, tmp_path):
    with pytest.raises(ValueError, match="extra CA bundle"):
        EnvBuilder(backend, extra_ca_bundle=tmp_path / "nope.pem")
    with pytest.raises(ValueError, match="wheels folder"):
        EnvBuilder(backend, wheels_dir=tmp_path / "nope")


def test_the_workbench_wheel_needs_the_built_labextension(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'workbench'\n")

    with pytest.raises(WorkbenchWheelUnavailable, match="scripts/build-labextension"):
        build_workbench_wheel(tmp_path / "out", source=tmp_path)


@pytest.mark.slow
def test_the_workbench_wheel_built_from_this_checkout(tmp_path):
    wheel = build_workbench_wheel(tmp_path)

    names = zipfile.ZipFile(wheel).namelist()
    assert "workbench/client/__init__.py" in names
    assert "workbench/environments/builder.py" in names
    assert any(n.endswith("labextensions/@workbench/panel/package.json") for n in names)
    assert any(n.endswith("jupyter_server_config.d/workbench_ext.json") for n in names)
