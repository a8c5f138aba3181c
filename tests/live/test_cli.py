"""The `workbench` command: admin commands on the registry, dataset commands over REST."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from tests.archives import image_classes, loadable_image_tar, zip_slip
from tests.conftest import add_environment
from workbench.cli import main


def run(live, *args: str, token: str | None = None, ok: bool = True):
    env = {
        "WORKBENCH_HOME": str(live.server.home),
        "WORKBENCH_URL": live.server.url,
        "WORKBENCH_TOKEN": token or live.alice,
    }
    result = CliRunner().invoke(main, list(args), env=env)
    assert (result.exit_code == 0) == ok, result.output
    return result.output


def test_db_and_user_admin(live):
    assert "at revision" in run(live, "db", "upgrade")
    out = run(live, "user", "add", "carol")
    assert "added carol (member)" in out
    carol_token = out.strip().split()[-1]
    assert isinstance(json.loads(run(live, "dataset", "list", "--json", token=carol_token)), list)
    assert "carol" in run(live, "user", "list")
    assert "already exists" in run(live, "user", "add", "carol", ok=False)
    assert run(live, "token", "create", "carol").startswith("wb_")
    assert "No user 'nobody'" in run(live, "token", "create", "nobody", ok=False)
    out = run(live, "quota", "set", "carol", "--replicas", "3", "--upload-bytes", "1000")
    assert re.search(r"replicas +0 used of +3 \(set\)", out), out
    assert re.search(r"memory_mb +0 used of +65536 \(default\)", out), out
    out = run(live, "quota", "set", "carol", "--default", "replicas")
    assert re.search(r"replicas +0 used of +16 \(default\)", out), out
    assert "Name a quota" in run(live, "quota", "set", "carol", ok=False)
    assert "does not exist" in run(live, "quota", "show", "nobody", ok=False)


def test_dataset_commands(live, tmp_path):
    ds_id = int(
        run(
            live,
            "dataset",
            "create",
            "--name",
            "cli-digits",
            "--purpose",
            "image",
            "--sub-purpose",
            "classification",
            "--format",
            "dir",
        ).strip()
    )
    archive = image_classes(tmp_path / "train.zip", {"a": 3, "b": 2})
    out = run(live, "dataset", "upload", str(ds_id), "train", str(archive))
    assert "train: 5 samples, 2 classes, 0 warnings" in out
    assert "5 samples in train" in run(live, "dataset", "samples", str(ds_id))
    shown = json.loads(run(live, "dataset", "show", str(ds_id)))
    assert shown["splits"]["train"]["statistics"]["class_counts"] == {"a": 3, "b": 2}
    assert "online" in run(live, "dataset", "publish", str(ds_id))
    listed = json.loads(run(live, "dataset", "list", "--json", "--mine"))
    assert [d["name"] for d in listed] == ["cli-digits"]
    assert "public" in run(live, "dataset", "set", str(ds_id), "--visibility", "public")
    assert "cli-digits" in run(live, "dataset", "list", token=live.bob)
    assert "offline" in run(live, "dataset", "offline", str(ds_id))
    assert f"deleted dataset {ds_id}" in run(live, "dataset", "delete", str(ds_id), "--yes")


def test_errors_are_one_clear_line(live, tmp_path):
    out = run(live, "dataset", "show", "424242", ok=False)
    assert "Error: dataset 424242 does not exist or is not visible to you" in out
    assert "Traceback" not in out
    ds_id = run(
        live,
        "dataset",
        "create",
        "--name",
        "cli-bad",
        "--purpose",
        "image",
        "--sub-purpose",
        "classification",
        "--format",
        "dir",
    ).strip()
    out = run(
        live, "dataset", "upload", ds_id, "train", str(zip_slip(tmp_path / "s.zip")), ok=False
    )
    assert "[archive_unsafe]" in out
    out = run(live, "dataset", "list", token="wb_bogus", ok=False)
    assert "unknown or revoked" in out


def test_team_commands(live):
    out = run(live, "team", "create", "cli-team")
    team_id = out.split()[1]
    assert "invitation sent to bob" in run(live, "team", "add", team_id, "bob")
    assert "cli-team" not in run(live, "team", "list", token=live.bob)  # not before accepting
    invitation = run(live, "invitation", "list", token=live.bob).split()[0]
    assert "joined team cli-team" in run(live, "invitation", "accept", invitation, token=live.bob)
    assert "cli-team" in run(live, "team", "list", token=live.bob)


def test_workspace_commands(live, tmp_path):
    from workbench.config import Settings
    from workbench.services import Workbench

    wb = Workbench.from_settings(Settings(home=live.server.home))
    env_id = add_environment(
        wb, name="py", framework="python", image_ref="none:1", owner_id=1, visibility="public"
    )
    wb.close()
    common = ["--purpose", "text", "--sub-purpose", "classification", "--environment", str(env_id)]
    ws_id = run(
        live,
        "workspace",
        "create",
        "--name",
        "cli-ws",
        "--scaffold",
        "demo",
        "--api",
        "classify",
        *common,
    ).strip()
    assert "cli-ws" in run(live, "workspace", "list")
    assert "Choose one of" in run(
        live,
        "workspace",
        "create",
        "--name",
        "x",
        "--empty",
        "--git",
        "https://h/r.git",
        *common,
        ok=False,
    )
    archive = tmp_path / "code.zip"
    import zipfile

    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("p/main.py", "print(1)\n")
    assert "cli-ws" in run(live, "workspace", "upload-code", ws_id, str(archive))
    assert "not in any of your teams" in run(live, "workspace", "member", ws_id, "carol", ok=False)
    team_id = run(live, "team", "create", "cli-ws-team").split()[1]
    assert "invitation sent to bob" in run(live, "team", "add", team_id, "bob")
    invitation = run(live, "invitation", "list", token=live.bob).split()[0]
    assert "joined team cli-ws-team" in run(
        live, "invitation", "accept", invitation, token=live.bob
    )
    assert "invited: bob" in run(live, "workspace", "member", ws_id, "bob")
    invitation = run(live, "invitation", "list", token=live.bob).split()[0]
    run(live, "invitation", "accept", invitation, token=live.bob)
    assert "members: bob" in run(live, "workspace", "list")
    assert "members" not in run(live, "workspace", "member", ws_id, "bob", "--remove")
    assert f"deleted workspace {ws_id}" in run(live, "workspace", "delete", ws_id, "--yes")


def test_image_loads_are_jobs_the_cli_follows(live, tmp_path):
    """`algorithm upload-image` follows its load job's log; `--detach` returns at once, and
    `workbench job` shows, waits for, logs and refuses to cancel a finished job."""
    algo = live.client().algorithms.create(
        name="cli-jobs", purpose="image", sub_purpose="classification"
    )
    tar, image_id, _tag = loadable_image_tar(tmp_path / "train-cli.tar", 1)
    out = run(live, "algorithm", "upload-image", str(algo.id), "train", str(tar))
    assert f"loading train-cli.tar ({tar.stat().st_size} bytes), image {image_id}" in out
    assert "succeeded: ready: workbench/algo-" in out

    other, _, _ = loadable_image_tar(tmp_path / "predict-cli.tar", 1)
    out = run(live, "algorithm", "upload-image", "--detach", str(algo.id), "predict", str(other))
    job_id = int(out.split("job ", 1)[1].split()[0])
    assert f"`workbench job log {job_id} -f` follows it" in out
    assert "succeeded" in run(live, "job", "wait", str(job_id))
    listed = json.loads(run(live, "job", "list", "--kind", "algorithm-image", "--json"))
    assert job_id in [j["id"] for j in listed]
    assert json.loads(run(live, "job", "show", str(job_id)))["state"] == "succeeded"
    log = run(live, "job", "log", str(job_id))
    assert log.splitlines()[-1].startswith(f"[workbench] job {job_id} succeeded: ready")
    out = run(live, "job", "cancel", str(job_id), ok=False)
    assert f"Job {job_id} is succeeded already" in out and "Traceback" not in out
    assert "job 999999 does not exist" in run(live, "job", "show", "999999", ok=False)


def test_cluster_commands(live):
    out = run(live, "cluster", "nodes")
    assert re.search(r" engine ready active +\d+ CPUs, [\d.]+ GiB +Docker ", out), out
    (node,) = json.loads(run(live, "cluster", "nodes", "--json"))
    assert node["role"] == "engine" and node["others"] == 0
    out = run(live, "cluster", "drain", node["id"], token=live.bob, ok=False)
    assert "Only an admin drains, pauses or activates a node" in out
    out = run(live, "cluster", "drain", node["id"], ok=False)
    assert "no other node to move its work to" in out and "swarm backend" in out
