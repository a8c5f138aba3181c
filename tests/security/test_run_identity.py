"""Runs are found by what Workbench set, never by what an image says (issue 15, point 2).
Docker merges an image's LABELs into its containers' labels, and the services find their
replicas by label. Uploads and pulls refuse images with Workbench's labels
(test_image_ownership.py); here, as a second line, an image that carries them anyway (an
image older than that check, say) runs as bob's workspace would, and alice's service must
not count it among its replicas."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from workbench.backends.base import MANAGED_LABEL, RunSpec
from workbench.backends.docker import DockerBackend
from workbench.backends.replicated import SLOT_LABEL
from workbench.deployments.jobs import SERVICE_LABEL, service_replicas

pytestmark = [pytest.mark.docker]


def test_a_container_of_an_image_with_replica_labels_is_no_replica(
    docker_backend: DockerBackend, base_image: str, tmp_path: Path
) -> None:
    instance = f"/tmp/wbtest-{uuid.uuid4().hex[:8]}"
    service_id = 424242
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {base_image}\n"
        f'LABEL {SERVICE_LABEL}="{service_id}" {SLOT_LABEL}="0" {MANAGED_LABEL}="{instance}"\n'
        'CMD ["sleep", "60"]\n'
    )
    tag = f"wbtest/fake-replica:{uuid.uuid4().hex[:8]}"
    list(docker_backend.build_image(context, tag))
    names = [f"wbtest-imposter-{uuid.uuid4().hex[:6]}", f"wbtest-replica-{uuid.uuid4().hex[:6]}"]
    try:
        # bob's container: Workbench set only its own run labels
        imposter = docker_backend.run(
            RunSpec(name=names[0], image=tag, labels={MANAGED_LABEL: instance})
        )
        # a real replica: Workbench set the service's labels on an ordinary image
        replica = docker_backend.run(
            RunSpec(
                name=names[1],
                image=base_image,
                command=("sleep", "60"),
                labels={
                    MANAGED_LABEL: instance,
                    SERVICE_LABEL: str(service_id),
                    SLOT_LABEL: "1",
                },
            )
        )
        found = service_replicas(docker_backend, instance, service_id)
        assert [(r.slot, r.run.id) for r in found] == [(1, replica.id)]
        # what the image says is left out; even the label Workbench set too, with the
        # same value as the image's: it can no longer tell who set it
        labels = docker_backend.status(imposter.id).labels
        assert not {SERVICE_LABEL, SLOT_LABEL, MANAGED_LABEL} & set(labels)
    finally:
        for name in names:
            docker_backend.remove(name)
        docker_backend.remove_image(tag)
