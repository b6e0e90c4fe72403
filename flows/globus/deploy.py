"""Deploy a flow to Globus: register its compute functions, create or update the flow.

Like gladier, nothing is sent that has not changed: a compute function is
registered with Globus Compute only when the checksum of its serialized form
(``ComputeSerializer`` + ``DillCodeSource``, what is uploaded; gladier's checksum) is new,
and the flow is created, or updated, only when the checksum of its
definition, input schema and metadata changed. Ids and checksums are kept in
a small JSON state file (default ``$XDG_DATA_HOME/xpcs-flows/globus-deploy.json``)
written atomically after each step, so an interrupted deploy resumes
(:mod:`flows.globus.deploy_state`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import globus_sdk
import jsonschema  # type: ignore[import-untyped]

from flows.errors import FlowDefinitionError, FlowNotFound
from flows.globus.deploy_state import (
    MAX_REPLACED,
    DeployRecord,
    FunctionDeployment,
    default_state_path,
    deployed_flow,
    flow_scope,
    load_state,
    replaced_flows,
    save_state,
)
from flows.globus.runs import map_globus_error, principal_urns
from flows.local.definition import validate_definition
from xpcs_kernel.errors import UsageError

__all__ = [
    "DeployRecord",
    "DeployableFlow",
    "FunctionDeployment",
    "default_state_path",
    "deploy",
    "deployed_flow",
    "flow_checksum",
    "function_checksum",
]


class DeployableFlow(Protocol):
    """What :func:`deploy` needs of a flow (``flows.xpcs.definition.FlowSpec`` has it)."""

    @property
    def title(self) -> str: ...
    @property
    def subtitle(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def keywords(self) -> Sequence[str]: ...
    @property
    def definition(self) -> Mapping[str, Any]: ...
    @property
    def input_schema(self) -> Mapping[str, Any]: ...
    @property
    def compute_functions(self) -> Mapping[str, Callable[..., Any]]: ...


def function_checksum(function: Callable[..., Any]) -> str:
    """SHA-256 of ``function`` serialized as it is registered (gladier's checksum)."""
    from globus_compute_sdk.serialize import ComputeSerializer, DillCodeSource

    serializer = ComputeSerializer(strategy_code=DillCodeSource())  # type: ignore[no-untyped-call]
    payload: str = serializer.serialize(function)
    return hashlib.sha256(payload.encode()).hexdigest()


def flow_checksum(spec: DeployableFlow, flow_fields: Mapping[str, Any]) -> str:
    """SHA-256 of the definition, input schema, metadata and permission fields."""
    doc = {
        "definition": spec.definition,
        "input_schema": spec.input_schema,
        "title": spec.title,
        "subtitle": spec.subtitle,
        "description": spec.description,
        "keywords": list(spec.keywords),
        **flow_fields,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _register(
    spec: DeployableFlow,
    state: dict[str, Any],
    compute: Callable[[], Any],
    *,
    group: str | None,
    force: bool,
) -> list[FunctionDeployment]:
    done = []
    for key, function in sorted(spec.compute_functions.items()):
        checksum = function_checksum(function)
        known = state["functions"].get(checksum)
        if known is not None and not force:
            done.append(
                FunctionDeployment(
                    key, function.__name__, known["function_id"], checksum, "unchanged"
                )
            )
            continue
        try:
            function_id = str(compute().register_function(function, group=group))
        except globus_sdk.GlobusError as exc:
            raise map_globus_error(
                exc, operation=f"register_function {function.__name__}"
            ) from exc
        state["functions"][checksum] = {"function_id": function_id, "name": function.__name__}
        done.append(
            FunctionDeployment(key, function.__name__, function_id, checksum, "registered")
        )
    return done


def deploy(
    spec: DeployableFlow,
    *,
    name: str = "xpcs",
    app: globus_sdk.GlobusApp | None = None,
    flows_client: globus_sdk.FlowsClient | None = None,
    compute_client: Any = None,
    state_path: Path | None = None,
    flow_viewers: Sequence[str] = (),
    flow_starters: Sequence[str] = (),
    flow_administrators: Sequence[str] = (),
    run_managers: Sequence[str] = (),
    run_monitors: Sequence[str] = (),
    subscription_id: str | None = None,
    compute_group: str | None = None,
    force: bool = False,
) -> DeployRecord:
    """Register ``spec``'s compute functions and create or update the flow, as needed.

    Parameters
    ----------
    spec
        The flow (``flows.xpcs.definition.xpcs_flow()``).
    name
        Key of this flow in the state file (``xpcs``, ``xpcs-batch``).
    app
        GlobusApp used to build the clients not given.
    flows_client, compute_client
        A :class:`~globus_sdk.FlowsClient` and a ``globus_compute_sdk.Client``
        (``do_version_check=False``, code strategy ``DillCodeSource``).
    state_path
        The JSON state file (default :func:`default_state_path`).
    flow_viewers, flow_starters, flow_administrators, run_managers, run_monitors
        Principal URNs (identities or groups) given these roles on the flow.
    subscription_id
        Globus subscription to attach the flow to.
    compute_group
        Globus group the functions are shared with.
    force
        Register and update even when nothing changed.

    Raises
    ------
    FlowDefinitionError
        The definition has errors, or the input schema is not a JSON Schema
        (nothing is sent).
    UsageError
        A principal is not a URN, or neither ``app`` nor the clients are given.
    GlobusServiceError
        Globus refused a registration, creation or update.
    """
    validate_definition(spec.definition)
    try:
        jsonschema.validators.validator_for(
            spec.input_schema, default=jsonschema.Draft7Validator
        ).check_schema(spec.input_schema)
    except jsonschema.SchemaError as exc:
        raise FlowDefinitionError(
            f"not a valid JSON Schema: {exc.message}", field="input_schema"
        ) from exc
    fields: dict[str, Any] = {
        role: principal_urns(values, argument=role)
        for role, values in (
            ("flow_viewers", flow_viewers),
            ("flow_starters", flow_starters),
            ("flow_administrators", flow_administrators),
            ("run_managers", run_managers),
            ("run_monitors", run_monitors),
        )
        if values
    }
    if subscription_id:
        fields["subscription_id"] = subscription_id
    if app is None and (
        flows_client is None or (compute_client is None and spec.compute_functions)
    ):
        raise UsageError("give a GlobusApp, or both a Flows and a Compute client", argument="app")
    path = state_path or default_state_path()
    state = load_state(path)

    def compute() -> Any:
        nonlocal compute_client
        if compute_client is None:
            from globus_compute_sdk import Client
            from globus_compute_sdk.serialize import DillCodeSource

            strategy = DillCodeSource()  # type: ignore[no-untyped-call]
            compute_client = Client(
                do_version_check=False, code_serialization_strategy=strategy, app=app
            )
        return compute_client

    functions = _register(spec, state, compute, group=compute_group, force=force)
    save_state(path, state)
    checksum = flow_checksum(spec, fields)
    entry = state["flows"].get(name)
    flows = flows_client or globus_sdk.FlowsClient(app=app)
    content: dict[str, Any] = {
        "title": spec.title,
        "subtitle": spec.subtitle,
        "description": spec.description,
        "keywords": list(spec.keywords),
        "definition": dict(spec.definition),
        "input_schema": dict(spec.input_schema),
        **fields,
    }
    if entry is not None and entry.get("checksum") == checksum and not force:
        flow_id, action = entry["flow_id"], "unchanged"
    else:
        flow_id, action = _put_flow(flows, None if entry is None else entry["flow_id"], content)
    replaced = list(replaced_flows(entry)) if entry is not None else []
    if entry is not None and entry["flow_id"] != flow_id:
        replaced = [*replaced, (entry["flow_id"], _now())][-MAX_REPLACED:]
    state["flows"][name] = {
        "flow_id": flow_id,
        "replaced_flows": [{"flow_id": f, "replaced_at": at} for f, at in replaced],
        "checksum": checksum,
        "title": spec.title,
        "functions": {
            f.key: {"name": f.name, "function_id": f.function_id, "checksum": f.checksum}
            for f in functions
        },
        "deployed_at": entry.get("deployed_at") if action == "unchanged" and entry else _now(),
    }
    save_state(path, state)
    return DeployRecord(
        name=name,
        flow_id=flow_id,
        flow_scope=flow_scope(flow_id),
        flow_checksum=checksum,
        flow_action=action,
        functions=tuple(functions),
        state_path=path,
        replaced_flows=tuple(replaced),
    )


def _put_flow(
    flows: globus_sdk.FlowsClient, flow_id: str | None, content: Mapping[str, Any]
) -> tuple[str, str]:
    """Update flow ``flow_id`` (create it when there is none, or it is gone)."""
    if flow_id is None:
        return _create(flows, content), "created"
    try:
        flows.update_flow(flow_id, **content)
    except globus_sdk.GlobusError as exc:
        error = map_globus_error(exc, operation="update_flow", flow_id=flow_id)
        if not isinstance(error, FlowNotFound):
            raise error from exc
        return _create(flows, content), "recreated"
    return flow_id, "updated"


def _create(flows: globus_sdk.FlowsClient, content: Mapping[str, Any]) -> str:
    try:
        response = flows.create_flow(**content)
    except globus_sdk.GlobusError as exc:
        raise map_globus_error(exc, operation="create_flow") from exc
    return str(response["id"])


def _now() -> str:
    return datetime.now(UTC).isoformat()
