"""``client.services``: services (a model version served by replicas), their endpoint's
key, metrics, logs, and calls through the server to the endpoint."""

from __future__ import annotations

from typing import Any

from workbench.client._http import LONG, AreaAPI, parse_list
from workbench.deployments.schemas import (
    ReplicaLog,
    ServiceInfo,
    ServiceKey,
    ServiceMetrics,
    ServiceStarted,
)


class ServicesAPI(AreaAPI[ServiceInfo]):
    """Services: a model version served by replicas of the model server. Every change is a
    deploy job; ``wait``: until it is over, a failed deploy raising its error."""

    path = "/services"
    info = ServiceInfo
    delete_timeout = LONG

    def create(
        self,
        name: str,
        version_id: int | None = None,
        *,
        algorithm_id: int | None = None,
        wait: bool = True,
        **options: Any,
    ) -> ServiceInfo:
        """Serve a version with the model server, or with the inference image of
        ``algorithm_id`` (the version's files, if one is given, at ``$MODEL_DIR``). Options:
        format, replicas, cpus, memory_mb, options (the model server's: max_batch,
        max_delay_ms, max_queue, threads), visibility, public_endpoint. The answer's ``key``
        is the endpoint's key, given this once (``Authorization: Bearer <key>``)."""
        body = {"name": name, "version_id": version_id, "algorithm_id": algorithm_id, **options}
        started = ServiceStarted.model_validate(self._c.json("POST", "/services", json=body))
        return self._after(started, wait).model_copy(update={"key": started.service.key})

    def rotate_key(self, service_id: int) -> str:
        """A new key for the service's endpoint (its owner's), given this once; the old one
        is refused from now on."""
        data = self._c.json("POST", f"/services/{service_id}/key")
        return ServiceKey.model_validate(data).key

    def scale(self, service_id: int, replicas: int, *, wait: bool = True) -> ServiceInfo:
        data = self._c.json("POST", f"/services/{service_id}/scale", json={"replicas": replicas})
        return self._after(ServiceStarted.model_validate(data), wait)

    def stop(self, service_id: int, *, wait: bool = True) -> ServiceInfo:
        return self._action(service_id, "stop", wait)

    def start(self, service_id: int, *, wait: bool = True) -> ServiceInfo:
        return self._action(service_id, "start", wait)

    def restart(self, service_id: int, *, wait: bool = True) -> ServiceInfo:
        return self._action(service_id, "restart", wait)

    def metrics(self, service_id: int) -> ServiceMetrics:
        """Each running replica's counters now; :func:`workbench.deployments.metrics.rates`
        of two readings: requests per second, latency percentiles, mean batch size."""
        data = self._c.json("GET", f"/services/{service_id}/metrics")
        return ServiceMetrics.model_validate(data)

    def logs(
        self, service_id: int, *, replica: int | None = None, tail: int = 200
    ) -> list[ReplicaLog]:
        """The last ``tail`` lines of each replica's log (of replica ``replica`` only)."""
        params: dict[str, Any] = {"tail": tail}
        if replica is not None:
            params["replica"] = replica
        return parse_list(
            ReplicaLog, self._c.json("GET", f"/services/{service_id}/logs", params=params)
        )

    def metadata(self, service_id: int, model: str) -> dict[str, Any]:
        """The served model's V2 metadata (inputs and outputs: names, datatypes, shapes)."""
        return dict(self._c.json("GET", f"/services/{service_id}/endpoint/v2/models/{model}"))

    def predict(self, service_id: int, sample: dict[str, Any]) -> dict[str, Any]:
        """One sample through the service's simple route, relayed by the server."""
        return self.call(service_id, "/predict", sample)

    def call(
        self, service_id: int, route: str, body: dict[str, Any] | None = None, method: str = "POST"
    ) -> Any:
        """Any route of the service (an inference image's API spec: its route, method and
        params), relayed by the server; its JSON answer."""
        path = f"/services/{service_id}/endpoint/{route.lstrip('/')}"
        if method == "GET":
            return self._c.json("GET", path, params=body or {})
        return self._c.json(method, path, json=body or {})

    def infer(self, service_id: int, model: str, request: dict[str, Any]) -> dict[str, Any]:
        """A V2 inference request (JSON tensors) through the service's endpoint."""
        path = f"/services/{service_id}/endpoint/v2/models/{model}/infer"
        return dict(self._c.json("POST", path, json=request))

    def _action(self, service_id: int, action: str, wait: bool) -> ServiceInfo:
        data = self._c.json("POST", f"/services/{service_id}/{action}")
        return self._after(ServiceStarted.model_validate(data), wait)

    def _after(self, started: ServiceStarted, wait: bool) -> ServiceInfo:
        if not wait:
            return started.service
        self._c.jobs.wait(started.job_id)
        return self.get(started.service.id)
