"""A model version's conversion to deployment formats (kind ``model-convert``) and its
benchmark (kind ``model-benchmark``) as jobs, run by the job runner (:mod:`workbench.jobs`)
in a container of the version's environment image, with the job's CPU and memory limits
and a time limit. Both run a script of ``workbench/models/container/`` (mounted
read-only, with the version's files and its verified formats read-only and the job's
folder writable) on the ``request.json`` the kind writes there.

**Conversion.** ``convert.py`` writes each format into ``out/<format>/`` and
``out/result.json`` (state, message, numeric check). The collection moves each verified
format to ``models/<model>/formats/<n>/<format>`` and records every format's row: only a
``verified`` format is ever offered for serving. While the job is not over its formats
are ``converting``; a job that ends without a result (crash, time limit, cancel) leaves
them ``failed`` with why, and the version's other formats untouched.

**Benchmark.** ``benchmark.py`` measures the native model and each verified format at
batch sizes 1, 2, 4, ... and appends each point to ``out/points.jsonl`` as it is measured.
The collection replaces the version's earlier points measured on the same machine (a
digest of the hardware: runs on different machines are never mixed) with these, keeps
the smaller sizes' points when the container was killed for memory at a larger one, and
makes the version's default serving format the one :func:`choose_default` picks (the fastest
exact format at batch size 1; INT8 only beyond noise and with no held-out accuracy lost).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from workbench.backends.base import Backend, Limits, Mount, RunInfo, RunSpec
from workbench.errors import JobFailed, UnsafeOutput, Unsupported
from workbench.jobs.files import RUN_UID, RunOutput, give_to_run_user, path_in_run, tail_lines
from workbench.jobs.kinds import JobContext, JobKind, Outcome
from workbench.jobs.states import ACTIVE_JOB_STATES
from workbench.models.formats import RUNTIME, choose_default
from workbench.networks import NO_NETWORK, SCRATCH
from workbench.registry.db import Registry
from workbench.registry.models import BenchmarkRun, Job, ModelFormat, ModelVersion
from workbench.store import ArtifactStore

JOB_KIND = "model-convert"
BENCHMARK_KIND = "model-benchmark"
IMPORT_KIND = "model-import"
TARGET_TYPE = "model_version"
#: the folder of the scripts that run in the container (convert.py, benchmark.py)
TOOLS_DIR = Path(__file__).resolve().parent / "container"
#: where things are inside the container
NATIVE_DIR, FORMATS_DIR = "/workbench/native", "/workbench/formats"
JOB_DIR, TOOL_DIR = "/workbench/job", "/workbench/converter"
#: the check of an exact format: every output within atol + rtol x |native|, by the native
#: kind. scikit-learn computes in float64 and its ONNX graph in float32: on the held-out
#: texts of the preset text-bayes a naive Bayes model's probabilities differ by up to
#: 1.3e-2 (measured); its labels must still be equal, and are
TOLERANCE = {
    "torchscript": (1e-4, 1e-3),
    "onnx": (1e-4, 1e-3),
    "keras": (1e-4, 1e-3),
    "savedmodel": (1e-4, 1e-3),
    "sklearn": (2e-2, 1e-2),
}
#: the check of an approximate format (INT8): the largest error within this share of the
#: native output's range
INT8_RANGE_TOL = 0.05
#: ... and, with held-out samples, at most this much lower accuracy than the native model's
INT8_ACCURACY_DROP = 0.02
#: random inputs of a check without held-out samples
SAMPLES = 16
#: the held-out samples a check takes at most (``samples.npz``, docs/contracts.md)
HELD_OUT_SAMPLES = 512
#: a version's held-out samples, beside its model
HELD_OUT_FILE = "samples.npz"
TAIL_LINES = 15
#: the most the server reads of a script's result.json or machine.json, and of its points
RESULT_BYTES, POINTS_BYTES = 4 * 1024**2, 16 * 1024**2
#: the longest message of a script's kept in a job's or a format's message
MESSAGE_CHARS = 4000


def formats_key(model_id: int, number: int) -> str:
    """The store folder of a version's converted formats (beside its native files, not in
    them: a download or a new conversion sees the native files alone)."""
    return f"models/{model_id}/formats/{number}"


class _VersionTool(JobKind):
    """A job that runs one of ``container/``'s scripts on a version (see the module doc):
    the container, the request file, the time limit and the clean-up; the subclass writes
    the request and collects the result."""

    #: the script in ``container/``
    script: str
    #: what the job does, for messages ("conversion")
    what: str

    def __init__(self, registry: Registry, store: ArtifactStore, *, concurrency: int = 1) -> None:
        self.registry = registry
        self.store = store
        self.concurrency = concurrency
        #: job id -> when its container was first seen running (monotonic), for the limit
        self._started: dict[int, float] = {}
        self._timed_out: set[int] = set()
        self._lock = threading.Lock()

    def request(self, ctx: JobContext, inside: _Inside) -> dict[str, Any]:
        """The script's request (paths as the container sees them, through ``inside``)."""
        raise NotImplementedError

    def folders(self, ctx: JobContext) -> tuple[Path, Path | None]:
        """The model's files (mounted read-only), and its formats' folder (or None)."""
        with self.registry.session() as s:
            version = s.get_one(ModelVersion, ctx.spec["version_id"])
            native_dir = self.store.path(version.storage_key)
            formats_dir = self.store.path(formats_key(version.model_id, version.version))
        formats_dir.mkdir(parents=True, exist_ok=True)
        return native_dir, formats_dir

    def prepare(self, ctx: JobContext) -> RunSpec:
        refuse_unboxed(ctx.backend, self.what)
        native_dir, formats_dir = self.folders(ctx)
        with self.registry.session() as s:
            job = s.get_one(Job, ctx.job_id)
            cpus, memory_mb = job.cpus, job.memory_mb
        shutil.rmtree(ctx.folder, ignore_errors=True)  # claimed again after a restart
        (ctx.folder / "out").mkdir(parents=True)
        (ctx.folder / "tmp").mkdir()  # TMPDIR: a model's copy may not fit the tmpfs
        give_to_run_user(ctx.folder)
        inside = _Inside(ctx.backend, native_dir, formats_dir, ctx.folder)
        request = {"out_dir": inside.job("out"), **self.request(ctx, inside)}
        (ctx.folder / "request.json").write_text(json.dumps(request, indent=1), encoding="utf-8")
        threads = str(max(1, int(cpus)))
        backend = ctx.backend
        mounts = [Mount(native_dir, path_in_run(backend, native_dir, NATIVE_DIR), True)]
        if formats_dir is not None:
            mounts.append(Mount(formats_dir, path_in_run(backend, formats_dir, FORMATS_DIR), True))
        return RunSpec(
            # unique on the engine, which other servers (another home) may share
            name=f"workbench-{self.what}-{ctx.spec.get('version_id', 'new')}-{ctx.job_id}-"
            f"{secrets.token_hex(3)}",
            image=ctx.spec["image"],
            command=(
                "python",
                path_in_run(backend, TOOLS_DIR / self.script, f"{TOOL_DIR}/{self.script}"),
                inside.job("request.json"),
            ),
            env={
                "PYTHONUNBUFFERED": "1",
                "WORKBENCH_THREADS": threads,
                "OMP_NUM_THREADS": threads,
                "TF_CPP_MIN_LOG_LEVEL": "2",
                "TMPDIR": inside.job("tmp"),
            },
            mounts=(
                *mounts,
                Mount(TOOLS_DIR, path_in_run(backend, TOOLS_DIR, TOOL_DIR), True),
                Mount(ctx.folder, path_in_run(backend, ctx.folder, JOB_DIR)),
            ),
            limits=Limits(cpus=cpus, memory_mb=memory_mb),
            user=f"{RUN_UID}:{RUN_UID}",
            # the files it loads are a user's: they reach nothing and change no image file
            network=NO_NETWORK,
            read_only_root=True,
            tmpfs=SCRATCH,
        )

    def poll(self, ctx: JobContext) -> None:
        """Stop a container that runs past the job's time limit (it hangs, say)."""
        now = time.monotonic()
        with self._lock:
            started = self._started.setdefault(ctx.job_id, now)
            if ctx.job_id in self._timed_out or now - started < ctx.spec["timeout_s"]:
                return
            self._timed_out.add(ctx.job_id)
        with self.registry.session() as s:
            run_id = s.get_one(Job, ctx.job_id).run_id
        if run_id:
            ctx.log(f"[workbench] the {self.what} ran past {ctx.spec['timeout_s']} s: stopping it")
            ctx.backend.stop(run_id, timeout=5)

    def timed_out(self, ctx: JobContext) -> bool:
        with self._lock:
            return ctx.job_id in self._timed_out

    def check_exit(self, ctx: JobContext, info: RunInfo, unchanged: str) -> None:
        """:class:`JobFailed` when the script was stopped at the time limit or did not exit
        0, saying so and what stayed as it was (``unchanged``)."""
        if self.timed_out(ctx):
            raise JobFailed(
                f"the {self.what} ran past its time limit ({ctx.spec['timeout_s']} s) and was "
                f"stopped; {unchanged}"
            )
        if info.oom_killed or info.exit_code != 0:
            raise self.failed_run(ctx, info)

    def failed_run(self, ctx: JobContext, info: RunInfo) -> JobFailed:
        """Why the script's container did not exit 0, with its last log lines."""
        why = "killed: out of memory" if info.oom_killed else f"exited with {info.exit_code}"
        last = "\n".join(tail_lines(ctx.log_path, TAIL_LINES))
        return JobFailed(f"the {self.what} {why}; the last log lines:\n{last}")

    def cleanup(self, ctx: JobContext) -> None:
        shutil.rmtree(ctx.folder, ignore_errors=True)
        with self._lock:
            self._started.pop(ctx.job_id, None)
            self._timed_out.discard(ctx.job_id)


def refuse_unboxed(backend: Backend, what: str) -> None:
    """:class:`Unsupported` (501) on a backend whose runs are not boxed in (the local
    backend): a model's import, conversion or benchmark loads its files, and loading a
    pickle, a module's code or a crafted file runs what its author wrote; as a process of
    the server's user it would read the server's secrets and every user's files."""
    if not backend.isolates_runs:
        raise Unsupported(
            f"A model {what} loads files a user brought, which can run any code; the "
            f"{backend.name} backend would run it unboxed, as the server's own process, so it "
            "refuses. Run the server on the docker backend (WORKBENCH_BACKEND=docker, with a "
            "Docker Engine: scripts/docker) for imports, conversions and benchmarks.",
            backend=backend.name,
        )


class _Inside:
    """Paths as the container sees them (on a backend whose runs see the host's files:
    the host's own)."""

    def __init__(self, backend: Backend, native: Path, formats: Path | None, job: Path) -> None:
        self.backend, self._native, self._formats, self._job = backend, native, formats, job

    def has_native(self, relative: str) -> bool:
        return (self._native / relative).is_file()

    def native(self, relative: str) -> str:
        return path_in_run(self.backend, self._native / relative, f"{NATIVE_DIR}/{relative}")

    def format(self, fmt: str, file: str) -> str:
        assert self._formats is not None
        return path_in_run(self.backend, self._formats / fmt / file, f"{FORMATS_DIR}/{fmt}/{file}")

    def job(self, relative: str) -> str:
        return path_in_run(self.backend, self._job / relative, f"{JOB_DIR}/{relative}")


class ConversionKind(_VersionTool):
    """Conversions of model versions (module doc)."""

    name = JOB_KIND
    script = "convert.py"
    what = "conversion"
    interrupted_message = "The server stopped while this conversion started; convert again."

    def __init__(self, registry: Registry, store: ArtifactStore, *, concurrency: int = 1) -> None:
        super().__init__(registry, store, concurrency=concurrency)
        #: test hook: formats whose converted file is made wrong before its check
        self.perturb: tuple[str, ...] = ()

    def request(self, ctx: JobContext, inside: _Inside) -> dict[str, Any]:
        spec = ctx.spec
        atol, rtol = TOLERANCE[spec["native"]]
        return {
            # verified formats that formats asked for are made from
            "verified": {fmt: inside.format(fmt, file) for fmt, file in spec["reuse"].items()},
            "native": spec["native"],
            "native_file": inside.native(spec["native_file"]),
            "formats": spec["formats"],
            "signature": spec["signature"],
            "atol": atol,
            "rtol": rtol,
            "int8_range_tol": INT8_RANGE_TOL,
            "accuracy_drop": INT8_ACCURACY_DROP,
            "samples": SAMPLES,
            "samples_file": (
                inside.native(HELD_OUT_FILE) if inside.has_native(HELD_OUT_FILE) else ""
            ),
            "held_out_samples": HELD_OUT_SAMPLES,
            "perturb": list(self.perturb),
        }

    def collect(self, ctx: JobContext, info: RunInfo) -> Outcome:
        self.check_exit(ctx, info, "the version and its other formats are as they were")
        out = RunOutput(ctx.folder, "the converter")
        try:
            document = out.read_json("out/result.json", limit=RESULT_BYTES)
            results: dict[str, dict[str, Any]] = document["formats"]
            if not isinstance(results, dict):
                raise TypeError("formats is not an object")
        except (ValueError, KeyError, TypeError) as exc:
            raise JobFailed(f"the converter wrote no result ({exc})") from exc
        verified, failed = [], []
        with self.store.staging() as staging:
            # every verified format is copied out of the job's folder first: one that is
            # not plain files fails the job before anything stored changes
            entries = {}
            for fmt in ctx.spec["formats"]:
                entry = results.get(fmt)
                entry = entry if isinstance(entry, dict) else {"state": "failed"}
                entry.setdefault("message", "no result")
                if entry.get("state") == "verified":
                    out.copy(f"out/{fmt}", staging / fmt)
                    entry["file"] = _file_in(staging / fmt, entry.get("file"), fmt)
                entries[fmt] = entry
            with self.registry.session() as s:
                version = s.get_one(ModelVersion, ctx.spec["version_id"])
                for fmt, entry in entries.items():
                    row = _row(s, version.id, fmt)
                    check = entry.get("check")
                    row.check = check if isinstance(check, dict) else {}
                    row.message = str(entry.get("message", ""))[:MESSAGE_CHARS]
                    if entry.get("state") == "verified":
                        key = f"{formats_key(version.model_id, version.version)}/{fmt}"
                        self.store.delete(key)
                        self.store.publish_dir(staging / fmt, key)
                        row.state, row.storage_key = "verified", key
                        row.file = entry["file"]
                        row.size = size_of(self.store.path(key) / entry["file"])
                        verified.append(fmt)
                    else:
                        row.state, row.storage_key, row.file, row.size = "failed", "", "", 0
                        first = row.message.splitlines()[0] if row.message else "?"
                        failed.append(f"{fmt} ({first})")
        summary = f"verified: {', '.join(verified) or 'none'}"
        if failed:
            summary += f"; failed: {'; '.join(failed)}"
        if not verified:
            raise JobFailed(summary)
        return Outcome(summary, {"verified": verified, "failed": [f.split(" ")[0] for f in failed]})

    def sync(self, s: Session, job: Job) -> None:
        """Formats stay ``converting`` while the job is not over; one that ended with its
        formats still converting (failed, stopped, timed out) leaves them ``failed``."""
        if job.state in ACTIVE_JOB_STATES:
            return
        for row in s.query(ModelFormat).filter(
            ModelFormat.job_id == job.id, ModelFormat.state == "converting"
        ):
            row.state = "failed"
            row.message = job.message or f"the conversion job ended {job.state}"


class BenchmarkKind(_VersionTool):
    """Benchmarks of model versions (module doc)."""

    name = BENCHMARK_KIND
    script = "benchmark.py"
    what = "benchmark"
    interrupted_message = "The server stopped while this benchmark started; run it again."

    def request(self, ctx: JobContext, inside: _Inside) -> dict[str, Any]:
        spec = ctx.spec
        formats = {"native": [spec["native"], inside.native(spec["native_file"])]}
        for fmt, file in spec["formats"].items():
            formats[fmt] = [RUNTIME[fmt], inside.format(fmt, file)]
        return {
            "formats": formats,
            "signature": spec["signature"],
            "batch_sizes": spec["batch_sizes"],
            "warmup_s": spec["warmup_s"],
            "window_s": spec["window_s"],
            "point_cap_s": spec["point_cap_s"],
        }

    def collect(self, ctx: JobContext, info: RunInfo) -> Outcome:
        out = RunOutput(ctx.folder, "the benchmark")
        try:
            found = out.read_json("out/machine.json", limit=RESULT_BYTES)
            if not isinstance(found, dict) or not isinstance(found.get("hardware"), dict):
                raise ValueError("no hardware description in machine.json")
        except ValueError as exc:
            if info.exit_code != 0:
                raise self.failed_run(ctx, info) from exc
            raise JobFailed(f"the benchmark wrote no machine description ({exc})") from exc
        points, notes = _read_points(
            out.read_text("out/points.jsonl", limit=POINTS_BYTES),
            {"native", *ctx.spec["formats"]},
        )
        with self.registry.session() as s:
            job = s.get_one(Job, ctx.job_id)
            memory_mb, cpus = job.memory_mb, job.cpus
        if info.oom_killed or info.exit_code != 0:
            trying = notes.pop("trying", None)
            if trying is None:
                raise self.failed_run(ctx, info)
            fmt, batch = trying
            why = (
                f"out of memory at batch size {batch} (the job's limit is {memory_mb} MiB)"
                if info.oom_killed or info.exit_code == 137
                else f"the benchmark {self.failed_run(ctx, info).message}"
            )
            notes[fmt] = f"{why}: the smaller sizes' results are kept"
        elif self.timed_out(ctx):
            notes["all"] = (
                f"the benchmark ran past its time limit ({ctx.spec['timeout_s']} s) and was "
                "stopped: the points measured by then are kept"
            )
        notes.pop("trying", None)
        if not points:
            raise JobFailed("no point was measured: " + "; ".join(notes.values()))
        # what the container was given (its CPU quota is the job's) beside what it saw
        hardware = {**found["hardware"], "cpus_given": cpus, "memory_mb_given": memory_mb}
        software = found.get("software") if isinstance(found.get("software"), dict) else {}
        machine = hashlib.sha256(json.dumps(hardware, sort_keys=True).encode()).hexdigest()[:16]
        with self.registry.session() as s:
            version = s.get_one(ModelVersion, ctx.spec["version_id"])
            s.query(BenchmarkRun).filter(
                BenchmarkRun.model_version_id == version.id, BenchmarkRun.machine == machine
            ).delete(synchronize_session=False)
            for point in points:
                s.add(
                    BenchmarkRun(
                        model_version_id=version.id,
                        format=point["format"],
                        device=hardware["gpu"] or "cpu",
                        batch_size=point["batch_size"],
                        p50_ms=point["p50_ms"],
                        p95_ms=point["p95_ms"],
                        p99_ms=point["p99_ms"],
                        throughput=point["throughput"],
                        memory_mb=point["memory_mb"],
                        calls=point["calls"],
                        samples=point["samples"],
                        stable=point["stable"],
                        hardware=hardware,
                        software=software,
                        machine=machine,
                        job_id=ctx.job_id,
                    )
                )
            checks = {
                row.format: row.check
                for row in s.query(ModelFormat).filter(
                    ModelFormat.model_version_id == version.id, ModelFormat.state == "verified"
                )
            }
            p50 = {p["format"]: p["p50_ms"] for p in points if p["batch_size"] == 1}
            choice = choose_default(p50, checks)
            if choice is not None:
                version.default_format = choice.format
            default = choice.reason if choice else f"{version.default_format or 'native'}"
        measured = sorted({p["format"] for p in points})
        message = f"{len(points)} points ({', '.join(measured)}); default format {default}"
        if notes:
            message += "; " + "; ".join(f"{k}: {v}" for k, v in notes.items())
        return Outcome(message, {"points": len(points), "machine": machine, "notes": notes})


class ImportKind(_VersionTool):
    """Imports of models trained elsewhere (kind ``model-import``): ``validate.py`` checks
    the uploaded files in a container of the chosen environment's image (loading a model
    runs code: never in the server), finds or checks the signature, and scripts a state
    dict to TorchScript; ``register`` (the import service's) then registers the files as a
    new version. An upload that is not what it claims fails the job with why, and nothing
    is registered; the upload is deleted either way."""

    name = IMPORT_KIND
    script = "validate.py"
    what = "import"
    interrupted_message = "The server stopped while this import started; import the file again."

    def __init__(
        self,
        registry: Registry,
        store: ArtifactStore,
        register: Callable[[dict[str, Any], Path, dict[str, Any]], dict[str, Any]],
        *,
        concurrency: int = 1,
    ) -> None:
        super().__init__(registry, store, concurrency=concurrency)
        self.register = register

    def folders(self, ctx: JobContext) -> tuple[Path, Path | None]:
        return self.store.path(ctx.spec["upload_key"]), None

    def request(self, ctx: JobContext, inside: _Inside) -> dict[str, Any]:
        spec = ctx.spec
        return {
            "kind": spec["kind"],
            "in_dir": inside.native("").rstrip("/"),
            "file": spec["file"],
            "entry": spec.get("entry", ""),
            "signature": spec.get("signature") or {},
        }

    def collect(self, ctx: JobContext, info: RunInfo) -> Outcome:
        self.check_exit(ctx, info, "nothing was registered")
        out = RunOutput(ctx.folder, "the import's check")
        try:
            result = out.read_json("out/result.json", limit=RESULT_BYTES)
            if not isinstance(result, dict):
                raise ValueError("result.json holds no object")
        except ValueError as exc:
            raise JobFailed(f"the check wrote no result ({exc}); nothing was registered") from exc
        if not result.get("ok"):
            message = str(result.get("message", "the check failed"))[:MESSAGE_CHARS]
            raise JobFailed(f"{message}; nothing was registered")
        upload = self.store.path(ctx.spec["upload_key"])
        with self.store.staging() as staging:
            if out.exists("out/files"):  # a state dict's TorchScript: the upload under source/
                folder = staging / "version"
                out.copy("out/files", folder)
                if (folder / "source").exists():
                    raise JobFailed("the check made a file named source; nothing was registered")
                shutil.move(str(upload), str(folder / "source"))
            else:
                folder = upload
            registered = self.register({**ctx.spec, "job_id": ctx.job_id}, folder, result)
        warnings = [str(w)[:MESSAGE_CHARS] for w in result.get("warnings") or ()]
        message = (
            f"registered {registered['model']} version {registered['version']}: "
            f"{str(result.get('message', ''))[:MESSAGE_CHARS]}"
        )
        if warnings:
            message += "; warnings: " + "; ".join(warnings)
        return Outcome(message, {**registered, "warnings": warnings})

    def cleanup(self, ctx: JobContext) -> None:
        self.store.delete(ctx.spec["upload_key"])
        super().cleanup(ctx)


def _is_point(entry: dict[str, Any]) -> bool:
    """Whether a line of points.jsonl is a measured point: a batch size and numbers."""
    numbers = ("p50_ms", "p95_ms", "p99_ms", "throughput", "memory_mb", "calls", "samples")
    return (
        isinstance(entry.get("batch_size"), int)
        and all(isinstance(entry.get(key), int | float) for key in numbers)
        and isinstance(entry.get("stable"), bool)
    )


def _read_points(
    text: str | None, formats: Collection[str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The measured points of ``points.jsonl`` (None: none written), and notes: per
    format, why its sizes stopped; ``trying``: the (format, batch size) being measured when
    the file ends (a container killed then)."""
    points: list[dict[str, Any]] = []
    notes: dict[str, Any] = {}
    for line in (text or "").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut off by a kill
        if not isinstance(entry, dict) or entry.get("format") not in formats:
            continue  # not a line of the script's (the container wrote what it liked)
        if "trying" in entry:
            notes["trying"] = (entry["format"], entry["trying"])
        elif "stopped" in entry:
            notes[entry["format"]] = str(entry["stopped"])[:MESSAGE_CHARS]
            notes.pop("trying", None)
        elif _is_point(entry):
            points.append(entry)
            notes.pop("trying", None)
    return points, notes


def _file_in(folder: Path, file: Any, fmt: str) -> str:
    """The converter's ``file`` of a format, once it names a file or folder inside the
    format's folder (the copy, which holds no links)."""
    name = file if isinstance(file, str) else ""
    parts = Path(name).parts
    if not parts or Path(name).is_absolute() or ".." in parts or not (folder / name).exists():
        raise UnsafeOutput(
            f"the converter named {name!r} as the {fmt} file, which is not in out/{fmt}; "
            "nothing was taken.",
            path=f"out/{fmt}",
        )
    return Path(name).as_posix()


def size_of(path: Path) -> int:
    """A file's size, or the total of a folder's files (a SavedModel)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _row(s: Session, version_id: int, fmt: str) -> ModelFormat:
    row = (
        s.query(ModelFormat)
        .filter(ModelFormat.model_version_id == version_id, ModelFormat.format == fmt)
        .one_or_none()
    )
    if row is None:
        row = ModelFormat(model_version_id=version_id, format=fmt, state="converting")
        s.add(row)
    return row
