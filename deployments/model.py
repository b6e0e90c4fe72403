"""The validated facility descriptor (:class:`Deployment`) and its parts.

A descriptor is plain data read from one TOML file; :func:`parse_deployment`
checks every field and raises :class:`~xpcs_kernel.errors.ConfigurationError`
naming the file and the dotted field at fault. Values that start with
``FILL-ME`` are placeholders for ids only the user knows; they fail
validation with a message saying what to fill in.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from deployments._fields import PLACEHOLDER_PREFIX, Fields
from deployments.gpu import GpuSpec, parse_gpu
from deployments.maintenance import MaintenanceWindow, parse_maintenance
from xpcs_kernel.errors import ConfigurationError

__all__ = [
    "STATUS_KINDS",
    "Capabilities",
    "Collection",
    "ComputeSpec",
    "Deployment",
    "Priors",
    "StatusSource",
    "parse_deployment",
]

#: Status source kinds a descriptor may list.
STATUS_KINDS = ("globus-compute", "iri", "nersc", "olcf")
_PRINCIPAL = re.compile(r"^urn:globus:(groups:id|auth:identity):[0-9a-f-]{36}$")
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(frozen=True)
class Collection:
    """A Globus collection and a path on it (``id`` is ``None`` for local paths)."""

    id: str | None
    path: str


@dataclass(frozen=True)
class ComputeSpec:
    """Where and how a run computes: endpoint and per-run batch request."""

    endpoint_id: str | None
    queue: str | None
    account: str | None
    walltime_minutes: int
    nodes: int

    def user_endpoint_config(self) -> dict[str, Any]:
        """The per-run values for the endpoint's user-config template."""
        hours, minutes = divmod(self.walltime_minutes, 60)
        config: dict[str, Any] = {"walltime": f"{hours:02d}:{minutes:02d}:00", "nodes": self.nodes}
        if self.queue:
            config["queue"] = self.queue
        if self.account:
            config["account"] = self.account
        return config


@dataclass(frozen=True)
class Capabilities:
    """What a facility offers one run.

    ``slots`` is how many runs may compute at once; ``transfer_streams`` how
    many stage-in transfers run at once at the learned rate (``None``: no
    limit), so that runs already staging in delay a new one.
    """

    gpu: bool
    memory_gb: float
    kernel_version: str
    slots: int
    transfer_streams: int | None = None
    gpus: GpuSpec | None = None  # model, runtime and count when ``gpu`` (deployments.gpu)
    #: the Compute endpoint reads the beamline storage directly (live runs follow files there)
    reads_beamline_storage: bool = False


@dataclass(frozen=True)
class StatusSource:
    """One machine-readable status source (``kind`` in :data:`STATUS_KINDS`)."""

    kind: str
    base_url: str
    resource: str | None
    timeout_s: float
    ttl_s: float


@dataclass(frozen=True)
class Priors:
    """Starting values for the rates the run history learns.

    ``throughput_mpix_s`` is in millions of pixel-frames per second (frames
    times pixels per frame divided by compute seconds).
    """

    transfer_rate_mb_s: float
    transfer_overhead_s: float
    queue_delay_s: float
    dispatch_latency_s: float
    throughput_mpix_s: float
    gpu_throughput_mpix_s: float | None = None  # torch runs on the GPUs (None: as CPU)


@dataclass(frozen=True)
class Deployment:
    """One validated facility descriptor."""

    name: str
    facility: str
    description: str
    engine: Literal["globus", "local"]
    compute: ComputeSpec
    source: Collection | None
    staging: Collection | None
    publication: Collection | None
    search_index: str | None
    allowed_roots: tuple[str, ...]
    capabilities: Capabilities
    status_sources: tuple[StatusSource, ...]
    maintenance: tuple[MaintenanceWindow, ...]
    priors: Priors
    run_monitors: tuple[str, ...] = ()
    run_managers: tuple[str, ...] = ()
    origin: str = field(default="", compare=False)

    def allows_path(self, path: str) -> bool:
        """Whether ``path`` (on the source collection) lies under an allowed root."""
        norm = posixpath.normpath(path)
        return any(
            norm == root or norm.startswith(root.rstrip("/") + "/") for root in self.allowed_roots
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary."""

        def coll(c: Collection | None) -> dict[str, Any] | None:
            return None if c is None else {"id": c.id, "path": c.path}

        return {
            "name": self.name,
            "facility": self.facility,
            "description": self.description,
            "engine": self.engine,
            "endpoint_id": self.compute.endpoint_id,
            "user_endpoint_config": self.compute.user_endpoint_config(),
            "source": coll(self.source),
            "staging": coll(self.staging),
            "publication": coll(self.publication),
            "search_index": self.search_index,
            "allowed_roots": list(self.allowed_roots),
            "capabilities": {
                **vars(self.capabilities),
                "gpus": None if self.capabilities.gpus is None else vars(self.capabilities.gpus),
            },
            "status_sources": [s.kind for s in self.status_sources],
            "maintenance": [m.description for m in self.maintenance],
            "priors": vars(self.priors),
            "origin": self.origin,
        }


def parse_deployment(name: str, data: Mapping[str, Any], *, source: str) -> Deployment:
    """Validate one descriptor.

    Parameters
    ----------
    name
        The deployment name (the file's stem).
    data
        The parsed TOML document.
    source
        Where it came from (a path), named in errors.

    Raises
    ------
    ConfigurationError
        For a missing, mistyped, out-of-range, unknown or unfilled field.
    """
    top = Fields(data, source)
    unfilled = list(_placeholders(data))
    if unfilled:
        listing = "; ".join(f"{key}: {hint}" for key, hint in unfilled)
        raise ConfigurationError(
            f"{len(unfilled)} placeholder(s) not filled in: {listing}",
            source=source,
            field=unfilled[0][0],
        )
    if not _NAME.match(name):
        raise top.error("name", "deployment names are lower-case words", found=name)
    engine = top.string("engine", "globus")
    if engine not in ("globus", "local"):
        raise top.error("engine", "unknown engine", expected="globus or local", found=engine)
    remote = engine == "globus"
    facility = top.string("facility")
    description = top.string("description", name)

    compute_t = _table(top, "compute", required=True)
    compute = ComputeSpec(
        endpoint_id=compute_t.uuid("endpoint_id", required=remote),
        queue=compute_t.optional_string("queue"),
        account=compute_t.optional_string("account"),
        walltime_minutes=compute_t.integer("walltime_minutes", 60, minimum=1),
        nodes=compute_t.integer("nodes", 1, minimum=1),
    )
    compute_t.finish()

    coll_t = top.table("collections", required=remote)
    source_c = staging_c = publication_c = None
    if coll_t is not None:
        source_c = _collection(coll_t, "source", remote)
        staging_c = _collection(coll_t, "staging", remote)
        publication_c = _collection(coll_t, "publication", remote)
        coll_t.finish()

    search_t = top.table("search", required=remote)
    index = None
    if search_t is not None:
        index = search_t.uuid("index")
        search_t.finish()

    paths_t = _table(top, "paths", required=True)
    roots = paths_t.strings("allowed_roots")
    for root in roots:
        if not root.startswith("/"):
            raise paths_t.error("allowed_roots", "roots must be absolute paths", found=root)
    if not roots:
        raise paths_t.error("allowed_roots", "needs at least one root", expected='e.g. ["/"]')
    paths_t.finish()

    cap_t = _table(top, "capabilities", required=True)
    has_gpu = cap_t.boolean("gpu")
    capabilities = Capabilities(
        gpu=has_gpu,
        memory_gb=cap_t.number("memory_gb", strict=True),
        kernel_version=cap_t.string("kernel_version"),
        slots=cap_t.integer("slots", 1, minimum=1),
        transfer_streams=(
            cap_t.integer("transfer_streams", minimum=1)
            if "transfer_streams" in cap_t.data
            else None
        ),
        gpus=parse_gpu(cap_t, gpu=has_gpu),
        reads_beamline_storage=cap_t.boolean("reads_beamline_storage", False),
    )
    _version_tuple(cap_t, "kernel_version", capabilities.kernel_version)
    cap_t.finish()

    status_sources = tuple(_status_source(s) for s in top.tables("status"))
    if remote and not any(s.kind == "globus-compute" for s in status_sources):
        raise top.error("status", "a Globus deployment needs a globus-compute status source")
    maintenance = tuple(parse_maintenance(m) for m in top.tables("maintenance"))

    pri_t = _table(top, "priors", required=True)
    priors = Priors(
        transfer_rate_mb_s=pri_t.number("transfer_rate_mb_s", strict=True),
        transfer_overhead_s=pri_t.number("transfer_overhead_s", 0.0),
        queue_delay_s=pri_t.number("queue_delay_s", 0.0),
        dispatch_latency_s=pri_t.number("dispatch_latency_s", 1.0),
        throughput_mpix_s=pri_t.number("throughput_mpix_s", strict=True),
        gpu_throughput_mpix_s=(
            pri_t.number("gpu_throughput_mpix_s", strict=True)
            if "gpu_throughput_mpix_s" in pri_t.data
            else None
        ),
    )
    pri_t.finish()

    mon_t = top.table("monitors", required=False)
    monitors: list[str] = []
    managers: list[str] = []
    if mon_t is not None:
        monitors = mon_t.strings("run_monitors", [])
        managers = mon_t.strings("run_managers", [])
        for key, values in (("run_monitors", monitors), ("run_managers", managers)):
            for v in values:
                if not _PRINCIPAL.match(v):
                    raise mon_t.error(
                        key,
                        "not a Globus principal URN",
                        expected="urn:globus:groups:id:<uuid>",
                        found=v,
                    )
        mon_t.finish()
    top.finish()
    return Deployment(
        name=name,
        facility=facility,
        description=description,
        engine="globus" if remote else "local",
        compute=compute,
        source=source_c,
        staging=staging_c,
        publication=publication_c,
        search_index=index,
        allowed_roots=tuple(posixpath.normpath(r) for r in roots),
        capabilities=capabilities,
        status_sources=status_sources,
        maintenance=maintenance,
        priors=priors,
        run_monitors=tuple(monitors),
        run_managers=tuple(managers),
        origin=source,
    )


def _placeholders(data: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(data, Mapping):
        for key, value in data.items():
            yield from _placeholders(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _placeholders(value, f"{prefix}[{i}]")
    elif isinstance(data, str) and data.startswith(PLACEHOLDER_PREFIX):
        yield prefix, data[len(PLACEHOLDER_PREFIX) :].lstrip(" :-")


def _table(f: Fields, key: str, *, required: bool) -> Fields:
    t = f.table(key, required=required)
    return t if t is not None else Fields({}, f.source, f.where(key))


def _collection(f: Fields, key: str, remote: bool) -> Collection | None:
    t = f.table(key, required=remote)
    if t is None:
        return None
    c = Collection(id=t.uuid("id", required=remote), path=t.string("path"))
    if not c.path.startswith("/"):
        raise t.error("path", "must be an absolute path", found=c.path)
    t.finish()
    return c


def _status_source(f: Fields) -> StatusSource:
    kind = f.string("kind")
    if kind not in STATUS_KINDS:
        raise f.error(
            "kind", "unknown status source", expected=", ".join(STATUS_KINDS), found=kind
        )
    base_url = f.string("base_url")
    if not base_url.startswith(("https://", "http://")):
        raise f.error("base_url", "not an HTTP(S) URL", found=base_url)
    resource = f.optional_string("resource")
    if kind != "globus-compute" and resource is None:
        raise f.error("resource", f"a {kind} source needs the resource name")
    src = StatusSource(
        kind=kind,
        base_url=base_url,
        resource=resource,
        timeout_s=f.number("timeout_s", 5.0, strict=True),
        ttl_s=f.number("ttl_s", 60.0),
    )
    f.finish()
    return src


def _version_tuple(f: Fields, key: str, text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split("."))
    except ValueError:
        raise f.error(
            key, "not a version", expected="dotted integers like 0.3", found=text
        ) from None
