"""The local Globus Compute action provider and its function registry.

Functions are registered as Globus would store them: serialized with
:class:`globus_compute_sdk.serialize.ComputeSerializer` and the code-source
strategy :class:`~globus_compute_sdk.serialize.DillCodeSource` (what gladier
0.11 registers with). Each task runs in a fresh Python worker process that
deserializes the function and its arguments, so a function that is not
self-contained (it relies on a module-level import or global) fails locally
exactly as it would on an endpoint.

Output mirrors the Compute action provider (v3):
``details.results[i].output`` is the return value of task ``i``; a function
that raises makes the action FAILED with the remote traceback in
``details.exception``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from globus_compute_sdk.serialize import ComputeSerializer, DillCodeSource

from flows.local.providers.base import ActionProvider, require, unable_to_run
from flows.local.records import ActionContext, ActionResult, utc_now
from flows.local.sqlite import connect
from tools.action_urls import COMPUTE_V2_URL, COMPUTE_V3_URL

__all__ = ["ComputeProvider", "FunctionRegistry"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS local_functions (
    function_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    serialized TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    registered_time TEXT NOT NULL
)
"""
_POLL_S = 0.05
_TAIL = 4000


class FunctionRegistry:
    """Function id -> serialized function, kept in the state database.

    Parameters
    ----------
    db_path
        The SQLite file (table ``local_functions``).
    """

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        self._serializer = ComputeSerializer(strategy_code=DillCodeSource)
        conn = connect(self.db_path)
        try:
            conn.execute(_SCHEMA)
        finally:
            conn.close()

    def register(self, function: Callable[..., Any], *, function_id: str | None = None) -> str:
        """Serialize ``function`` (code source) and store it; returns its id.

        Registering the same source again returns the id it already has
        (unless ``function_id`` names another), as gladier reuses ids of
        unchanged functions.
        """
        payload = self._serializer.serialize(function)
        return self.register_serialized(payload, name=function.__name__, function_id=function_id)

    def register_serialized(
        self, payload: str, *, name: str, function_id: str | None = None
    ) -> str:
        """Store an already serialized function (a Compute code buffer)."""
        digest = hashlib.sha256(payload.encode()).hexdigest()
        conn = connect(self.db_path)
        try:
            with conn:
                if function_id is None:
                    row = conn.execute(
                        "SELECT function_id FROM local_functions WHERE sha256 = ? AND name = ?",
                        (digest, name),
                    ).fetchone()
                    if row is not None:
                        return str(row[0])
                    function_id = str(uuid.uuid4())
                conn.execute(
                    "INSERT OR REPLACE INTO local_functions"
                    " (function_id, name, serialized, sha256, registered_time)"
                    " VALUES (?,?,?,?,?)",
                    (function_id, name, payload, digest, utc_now()),
                )
        finally:
            conn.close()
        return function_id

    def get(self, function_id: str) -> str:
        """The serialized function; ``ActionUnableToRun`` when unknown."""
        conn = connect(self.db_path)
        try:
            row = conn.execute(
                "SELECT serialized FROM local_functions WHERE function_id = ?", (function_id,)
            ).fetchone()
        finally:
            conn.close()
        if row is None:
            raise unable_to_run(f"function {function_id} is not registered locally")
        return str(row[0])

    def names(self) -> dict[str, str]:
        """``{function_id: function name}`` of every registered function."""
        conn = connect(self.db_path)
        try:
            rows = conn.execute("SELECT function_id, name FROM local_functions").fetchall()
        finally:
            conn.close()
        return {str(fid): str(name) for fid, name in rows}


@functools.cache
def _worker_source() -> str:
    """The worker program, run with ``python -c`` so it needs only globus_compute_sdk."""
    from flows.local.providers import compute_worker as _compute_worker

    return Path(_compute_worker.__file__).read_text()


def _tasks(body: Mapping[str, Any], url: str) -> list[tuple[str, list[Any], dict[str, Any]]]:
    """Normalize a v3 (or v2) request body into (function_id, args, kwargs) tuples."""
    if url == COMPUTE_V3_URL:
        require(body, "endpoint_id", str)
        raw = require(body, "tasks", list)
    else:
        raw = body.get("tasks") or [body]
    if not raw:
        raise unable_to_run("a submission needs at least one task")
    tasks = []
    for i, task in enumerate(raw):
        if not isinstance(task, Mapping):
            raise unable_to_run(f"tasks[{i}] must be an object")
        fid = task.get("function_id", task.get("function"))
        if not isinstance(fid, str):
            raise unable_to_run(f"tasks[{i}] lacks a function_id")
        args = task.get("args", [])
        args = list(args) if isinstance(args, (list, tuple)) else [args]
        kwargs = task.get("kwargs", task.get("payload", {})) or {}
        if not isinstance(kwargs, Mapping):
            raise unable_to_run(f"tasks[{i}].kwargs must be an object")
        tasks.append((fid, args, dict(kwargs)))
    return tasks


class ComputeProvider(ActionProvider):
    """Serves the Compute action URL by running functions in worker processes.

    Parameters
    ----------
    registry
        Where function ids are looked up.
    url
        :data:`~tools.action_urls.COMPUTE_V3_URL` (default) or
        :data:`~tools.action_urls.COMPUTE_V2_URL`.
    python
        The interpreter of the worker process (this one by default).
    env
        Extra environment variables for the worker.
    """

    def __init__(
        self,
        registry: FunctionRegistry,
        *,
        url: str = COMPUTE_V3_URL,
        python: str | os.PathLike[str] = sys.executable,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if url not in (COMPUTE_V3_URL, COMPUTE_V2_URL):
            raise unable_to_run(f"{url} is not a Compute action URL")
        self.url = url
        self.registry = registry
        self.python = os.fspath(python)
        self.env = dict(env or {})
        self._serializer = ComputeSerializer()

    def run(self, body: Mapping[str, Any], *, context: ActionContext) -> ActionResult:
        """Run each task in its own worker process, in order."""
        tasks = _tasks(body, self.url)
        payloads = [(fid, self.registry.get(fid), args, kwargs) for fid, args, kwargs in tasks]
        results: list[dict[str, Any]] = []
        details: dict[str, Any] = {
            "task_group_id": context.action_id,
            "endpoint_id": body.get("endpoint_id", body.get("endpoint")),
            "results": results,
        }
        for i, (fid, payload, args, kwargs) in enumerate(payloads):
            task_id = f"{context.action_id}-{i}"
            reply = self._run_task(payload, args, kwargs, context)
            if not reply.get("ok"):
                results.append({"task_id": task_id, "function_id": fid, "status": "failed"})
                return ActionResult.failed(
                    f"task {i} (function {fid}) failed: {reply['error']}",
                    {**details, "exception": reply.get("exception", "")},
                )
            try:
                output = self._serializer.deserialize(reply["result"])
                output = json.loads(json.dumps(output, allow_nan=False))
            except (TypeError, ValueError) as exc:
                results.append({"task_id": task_id, "function_id": fid, "status": "failed"})
                return ActionResult.failed(
                    f"task {i} (function {fid}) returned a value that is not JSON: {exc}",
                    details,
                )
            results.append(
                {"task_id": task_id, "function_id": fid, "status": "success", "output": output}
            )
        return ActionResult.succeeded(details)

    def _run_task(
        self,
        payload: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        context: ActionContext,
    ) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="xpcs-flows-task-") as tmp:
            request, reply, log = (
                Path(tmp, "request.json"),
                Path(tmp, "reply.json"),
                Path(tmp, "log"),
            )
            request.write_text(
                json.dumps(
                    {
                        "function": payload,
                        "args": self._serializer.serialize(list(args)),
                        "kwargs": self._serializer.serialize(dict(kwargs)),
                    }
                )
            )
            with log.open("wb") as log_handle:
                proc = subprocess.Popen(
                    [self.python, "-c", _worker_source(), str(request), str(reply)],
                    stdin=subprocess.DEVNULL,
                    stdout=log_handle,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **self.env},
                )
                code = self._wait(proc, context)
            output = log.read_bytes()[-_TAIL:].decode(errors="replace")
            if code is None:
                return {
                    "ok": False,
                    "error": "task stopped: the action was cancelled or timed out",
                }
            if reply.exists():
                return dict(json.loads(reply.read_text()))
            return {
                "ok": False,
                "error": f"worker process exited with status {code} without a result",
                "exception": output,
            }

    @staticmethod
    def _wait(proc: subprocess.Popen[bytes], context: ActionContext) -> int | None:
        """Wait for the worker; kill it (and return ``None``) on cancel or deadline."""
        while True:
            with contextlib.suppress(subprocess.TimeoutExpired):
                return proc.wait(timeout=_POLL_S)
            remaining = context.remaining()
            if context.cancelled.is_set() or (remaining is not None and remaining <= 0):
                proc.kill()
                proc.wait()
                return None
