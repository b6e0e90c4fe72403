"""TransferBack (optional, per run): the results back to the beamline.

A Choice on ``$.input.transfer_back`` (absent means ``false``) either runs
the Transfer of the results directory from the staging collection to
``$.input.return_to`` or records that it was skipped.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gladier import GladierBaseTool

from tools._states import HOUR, TRANSFER_URL, action_state, failed_state_name, failure_state

__all__ = ["TransferBack"]


def _transfer_back_fragment() -> dict[str, Any]:
    return {
        "StartAt": "ShouldTransferBack",
        "States": {
            "ShouldTransferBack": {
                "Comment": "Copy the results back to the beamline only when asked",
                "Type": "Choice",
                "Choices": [
                    {
                        "And": [
                            {"Variable": "$.input.transfer_back", "IsPresent": True},
                            {"Variable": "$.input.transfer_back", "BooleanEquals": True},
                        ],
                        "Next": "TransferBack",
                    }
                ],
                "Default": "SkipTransferBack",
            },
            "TransferBack": action_state(
                "TransferBack",
                action_url=TRANSFER_URL,
                parameters={
                    "source_endpoint.$": "$.input.staging.id",
                    "destination_endpoint.$": "$.input.return_to.id",
                    "verify_checksum": True,
                    "label": "XPCS results back",
                    "DATA": [
                        {
                            "source_path.$": "$.Paths.staged_results",
                            "destination_path.$": "$.input.return_to.path",
                            "recursive": True,
                        }
                    ],
                },
                wait_time=12 * HOUR,
                comment="Copy the results directory back to the beamline collection",
            ),
            failed_state_name("TransferBack"): failure_state("TransferBack"),
            "SkipTransferBack": {
                "Comment": "No transfer back was asked for",
                "Type": "Pass",
                "Parameters": {"skipped": True},
                "ResultPath": "$.TransferBack",
                "End": True,
            },
        },
    }


class TransferBack(GladierBaseTool):  # type: ignore[misc]
    """Optionally copy the results back to ``$.input.return_to`` (when ``transfer_back``)."""

    flow_definition: ClassVar[dict[str, Any]] = _transfer_back_fragment()
    flow_transition_states: ClassVar[list[str]] = ["TransferBack", "SkipTransferBack"]
    required_input: ClassVar[list[str]] = ["staging"]
    flow_input: ClassVar[dict[str, Any]] = {"transfer_back": False}
