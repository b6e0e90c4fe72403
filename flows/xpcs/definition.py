"""The XPCS flows: gladier clients chaining the tools, and their deployable definitions.

:func:`xpcs_flow` returns a :class:`FlowSpec`: the Globus Flows definition
exactly as deployed (and as the local engine runs it), the input schema
(the web app's start form), title, subtitle, description, keywords and the
compute functions keyed by the flow-input key that holds each function id.
It is built offline from the tools (gladier's ``ToolChain``), with no login.

The chain is ``PlanPaths -> TransferIn -> Correlate -> Plots ->
PublishMetadata -> PublishTransfer -> PublishIngest -> ShouldTransferBack ->
(TransferBack | SkipTransferBack) -> RecordResult``. Every Action state
catches ``States.ALL`` into its ``<State>Failed`` Pass state, which records
``$.Failure`` and ends in the Fail state ``FlowFailed``: nothing after a
failure publishes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from gladier import GladierBaseClient, GladierBaseTool
from gladier.utils.tool_chain import ToolChain

from flows.xpcs.schema import input_schema
from tools import (
    BatchCorrelate,
    BatchPlots,
    BatchPublish,
    BatchTransferIn,
    Correlate,
    CorrelateLive,
    Plots,
    Publish,
    TransferBack,
    TransferIn,
    xpcs_correlate,
    xpcs_correlate_live,
    xpcs_plots,
    xpcs_publish_metadata,
)
from tools._states import FLOW_FAILED, compute_output, fail_state

__all__ = [
    "BATCH_TOOLS",
    "LIVE_TOOLS",
    "SINGLE_TOOLS",
    "FlowSpec",
    "XPCSBatchFlowClient",
    "XPCSFlowClient",
    "build_definition",
    "xpcs_flow",
]

#: The tools of the single-dataset flow, in order.
SINGLE_TOOLS: tuple[type[GladierBaseTool], ...] = (
    TransferIn,
    Correlate,
    Plots,
    Publish,
    TransferBack,
)
#: The tools of the batch flow, in order.
BATCH_TOOLS: tuple[type[GladierBaseTool], ...] = (
    BatchTransferIn,
    BatchCorrelate,
    BatchPlots,
    BatchPublish,
    TransferBack,
)

#: The tools of the live flow: no TransferIn (the endpoint follows the beamline's file).
LIVE_TOOLS: tuple[type[GladierBaseTool], ...] = (
    CorrelateLive,
    Plots,
    Publish,
    TransferBack,
)

_COMPUTE_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "xpcs_correlate_function_id": xpcs_correlate,
    "xpcs_plots_function_id": xpcs_plots,
    "xpcs_publish_metadata_function_id": xpcs_publish_metadata,
}

_TITLE = "XPCS correlation"
_KEYWORDS = ("XPCS", "correlation", "multi-tau", "two-time", "beamline", "HPC")


@dataclass(frozen=True)
class FlowSpec:
    """A deployable XPCS flow.

    Attributes
    ----------
    title, subtitle, description, keywords
        What the Globus web app shows.
    definition
        The Globus Flows definition, exactly as deployed.
    input_schema
        The JSON Schema of the run input (the start form).
    compute_functions
        Flow-input key holding a function id (``xpcs_correlate_function_id``
        ...) -> the compute function to register under it.
    """

    title: str
    subtitle: str
    description: str
    keywords: tuple[str, ...]
    definition: dict[str, Any]
    input_schema: dict[str, Any]
    compute_functions: Mapping[str, Callable[..., Any]] = field(default_factory=dict)

    def deploy_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``FlowsClient.create_flow``/``update_flow`` for this flow."""
        return {
            "title": self.title,
            "definition": copy.deepcopy(self.definition),
            "input_schema": copy.deepcopy(self.input_schema),
            "subtitle": self.subtitle,
            "description": self.description,
            "keywords": list(self.keywords),
        }


def _record_result(batch: bool) -> dict[str, Any]:
    params: dict[str, Any] = {
        "subject.$": f"{compute_output('PublishMetadata')}.subject",
        "n_files.$": f"{compute_output('PublishMetadata')}.n_files",
        "published_to.$": "$.input.publication",
    }
    if not batch:
        params["result.$"] = f"{compute_output('Correlate')}.output"
        params["plots.$"] = f"{compute_output('Plots')}.plots"
    return {
        "Comment": "Summarize where the results are (the run's output)",
        "Type": "Pass",
        "Parameters": params,
        "ResultPath": "$.Result",
    }


def build_definition(
    tools: Sequence[type[GladierBaseTool]], *, batch: bool, live: bool = False
) -> dict[str, Any]:
    """Chain the tools' fragments with gladier's ToolChain and add the result and Fail states."""
    comment = (
        "XPCS batch: transfer, correlate (one Compute task per dataset), plot, publish"
        if batch
        else "XPCS: transfer, correlate, plot, publish, optionally transfer back"
    )
    if live:
        comment = "XPCS live: follow the file while it is written, then plot, publish once"
    chain = ToolChain(flow_comment=comment).chain([tool() for tool in tools])
    chain.chain_state("RecordResult", _record_result(batch))
    definition: dict[str, Any] = chain.flow_definition
    definition["States"][FLOW_FAILED] = fail_state()
    return definition


class XPCSFlowClient(GladierBaseClient):  # type: ignore[misc]
    """XPCS: transfer one dataset, correlate it on HPC, plot, publish, optionally return it."""

    gladier_tools: ClassVar[list[type[GladierBaseTool]]] = list(SINGLE_TOOLS)
    flow_schema: ClassVar[dict[str, Any]] = input_schema(batch=False)

    @property
    def flow_definition(self) -> dict[str, Any]:
        """The definition :func:`xpcs_flow` returns (built from the tools)."""
        return build_definition(SINGLE_TOOLS, batch=False)


class XPCSBatchFlowClient(GladierBaseClient):  # type: ignore[misc]
    """XPCS batch: many datasets in one run (Compute v3 task fan-out)."""

    gladier_tools: ClassVar[list[type[GladierBaseTool]]] = list(BATCH_TOOLS)
    flow_schema: ClassVar[dict[str, Any]] = input_schema(batch=True)

    @property
    def flow_definition(self) -> dict[str, Any]:
        """The definition :func:`xpcs_flow` returns with ``batch=True``."""
        return build_definition(BATCH_TOOLS, batch=True)


def xpcs_flow(*, batch: bool = False, live: bool = False) -> FlowSpec:
    """The single-dataset (or batch, or live) XPCS flow, built offline from the tools.

    Parameters
    ----------
    batch
        The batch variant: many datasets in one run, one Compute task per
        dataset in one Correlate action, one catalog entry for the batch.
    live
        The live variant (:data:`LIVE_TOOLS`): the Compute endpoint follows
        the raw file where the beamline writes it, then the flow plots and
        publishes once, when the file is complete.
    """
    if live and batch:
        raise ValueError("a live flow follows one dataset; there is no live batch flow")
    if live:
        return FlowSpec(
            title=f"{_TITLE} (live)",
            subtitle="Correlate one XPCS dataset while the detector writes it, then publish",
            description=(
                "Follows a raw XPCS file while the detector writes it, as a Globus Compute "
                "task on an endpoint that reads the beamline storage: the result in the "
                "facility staging area is replaced with the g2 so far every few seconds. Once "
                "the file is complete (the writer's done marker) it draws the figures, "
                "publishes the result with its catalog entry once and optionally copies it "
                "back. Any failure ends the run FAILED with $.Failure; nothing is published."
            ),
            keywords=(*_KEYWORDS, "live"),
            definition=build_definition(LIVE_TOOLS, batch=False, live=True),
            input_schema=input_schema(live=True),
            compute_functions={
                **_COMPUTE_FUNCTIONS,
                "xpcs_correlate_live_function_id": xpcs_correlate_live,
            },
        )
    if batch:
        return FlowSpec(
            title=f"{_TITLE} (batch)",
            subtitle="Many XPCS datasets in one run: transfer, correlate on HPC, publish",
            description=(
                "Transfers the raw data and q-maps of many datasets from the beamline to a "
                "facility, correlates them with xpcs_kernel as one Globus Compute task per "
                "dataset, draws the standard figures, publishes results and one catalog entry "
                "(metadata, sha256 manifest, DataCite fields) and optionally copies the results "
                "back. Any failure ends the run FAILED with $.Failure; nothing is published."
            ),
            keywords=(*_KEYWORDS, "batch"),
            definition=build_definition(BATCH_TOOLS, batch=True),
            input_schema=input_schema(batch=True),
            compute_functions=dict(_COMPUTE_FUNCTIONS),
        )
    return FlowSpec(
        title=_TITLE,
        subtitle="Transfer, correlate on HPC, plot and publish one XPCS dataset",
        description=(
            "Transfers a raw XPCS dataset and its q-map from the beamline to a facility "
            "(checksums verified), correlates it with xpcs_kernel as a Globus Compute task "
            "(multi-tau and/or two-time, with fits), draws g2, SAXS, intensity and two-time "
            "figures, publishes the results with a catalog entry in Globus Search (metadata, "
            "sha256 manifest, DataCite fields; a re-run updates the same entry) and optionally "
            "copies the results back. Any failure ends the run FAILED with $.Failure naming "
            "the step and the cause; nothing is published after a failure."
        ),
        keywords=_KEYWORDS,
        definition=build_definition(SINGLE_TOOLS, batch=False),
        input_schema=input_schema(batch=False),
        compute_functions=dict(_COMPUTE_FUNCTIONS),
    )
