"""The local Transfer provider: copies, checksum verification, sync levels, flow use."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from flows.errors import ActionError
from flows.local import (
    ActionContext,
    ActionStatus,
    CollectionMap,
    LocalEngine,
    RunStatus,
    TransferProvider,
    default_providers,
)
from flows.local.providers.transfer import sha256_file
from tools.action_urls import LEGACY_TRANSFER_URL, TRANSFER_URL

SRC, DST = "collection-beamline", "collection-cluster"


@pytest.fixture
def roots(tmp_path: Path) -> dict[str, Path]:
    src, dst = tmp_path / "beamline", tmp_path / "cluster"
    (src / "run7" / "sub").mkdir(parents=True)
    (src / "run7" / "frames.h5").write_bytes(b"frame-bytes" * 1000)
    (src / "run7" / "sub" / "meta.json").write_text('{"a": 1}')
    dst.mkdir()
    return {SRC: src, DST: dst}


def _context(action_id: str = "act-1") -> ActionContext:
    return ActionContext(
        run_id="run-1",
        state_name="Transfer",
        action_id=action_id,
        action_url=TRANSFER_URL,
        username="tester",
    )


def _body(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source_endpoint": SRC,
        "destination_endpoint": DST,
        "DATA": [{"source_path": "/run7/frames.h5", "destination_path": "/in/frames.h5"}],
        "verify_checksum": True,
        "label": "raw in",
    }
    body.update(extra)
    return body


def test_copy_with_checksum_ok(roots: dict[str, Path]) -> None:
    provider = TransferProvider(roots)
    result = provider.run(_body(), context=_context())
    assert result.status is ActionStatus.SUCCEEDED
    dst = roots[DST] / "in" / "frames.h5"
    assert sha256_file(dst) == sha256_file(roots[SRC] / "run7" / "frames.h5")
    assert result.details["files_transferred"] == 1
    assert result.details["bytes_transferred"] == 11000
    assert result.details["label"] == "raw in"
    assert [p.name for p in dst.parent.iterdir()] == ["frames.h5"]  # no partial files left


def _corrupting_copy(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    with dst.open("r+b") as handle:
        handle.seek(5)
        handle.write(b"\xff")


def test_a_corrupted_copy_fails_the_action_and_leaves_nothing(roots: dict[str, Path]) -> None:
    provider = TransferProvider(roots, copy_file=_corrupting_copy)
    result = provider.run(_body(), context=_context())
    assert result.status is ActionStatus.FAILED
    error = result.details["error"]
    assert error.startswith("checksum mismatch copying")
    assert sha256_file(roots[SRC] / "run7" / "frames.h5") in error
    assert not (roots[DST] / "in" / "frames.h5").exists()
    assert list((roots[DST] / "in").iterdir()) == []


def test_without_verify_checksum_the_corruption_goes_unnoticed(roots: dict[str, Path]) -> None:
    # the control for the test above: only verification catches it
    provider = TransferProvider(roots, copy_file=_corrupting_copy)
    result = provider.run(_body(verify_checksum=False), context=_context())
    assert result.status is ActionStatus.SUCCEEDED


def test_recursive_directory_copy_and_sync_level(roots: dict[str, Path]) -> None:
    provider = TransferProvider(roots)
    body = _body(DATA=[{"source_path": "/~/run7", "destination_path": "/copy", "recursive": True}])
    first = provider.run(body, context=_context())
    assert first.details["files_transferred"] == 2
    assert (roots[DST] / "copy" / "sub" / "meta.json").read_text() == '{"a": 1}'
    again = provider.run({**body, "sync_level": 3}, context=_context())
    assert (again.details["files_transferred"], again.details["files_skipped"]) == (0, 2)
    (roots[SRC] / "run7" / "sub" / "meta.json").write_text('{"a": 2}')
    third = provider.run({**body, "sync_level": 3}, context=_context())
    assert (third.details["files_transferred"], third.details["files_skipped"]) == (1, 1)


def test_directory_without_recursive_and_missing_source_fail(roots: dict[str, Path]) -> None:
    provider = TransferProvider(roots)
    folder = provider.run(
        _body(DATA=[{"source_path": "/run7", "destination_path": "/x"}]), context=_context()
    )
    assert folder.status is ActionStatus.FAILED
    assert "is a directory" in folder.details["error"]
    missing = provider.run(
        _body(DATA=[{"source_path": "/nope.h5", "destination_path": "/x"}]), context=_context()
    )
    assert missing.status is ActionStatus.FAILED
    assert "/nope.h5 does not exist" in missing.details["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_body(source_endpoint="unknown"), "collection unknown has no local directory"),
        (_body(DATA=[{"source_path": "/../etc/passwd", "destination_path": "/x"}]), "escapes"),
        ({"source_endpoint": SRC, "destination_endpoint": DST}, "lacks required field 'DATA'"),
    ],
)
def test_bad_requests_are_unable_to_run(
    roots: dict[str, Path], body: dict[str, Any], message: str
) -> None:
    with pytest.raises(ActionError) as info:
        TransferProvider(roots).run(body, context=_context())
    assert info.value.code == "ActionUnableToRun"
    assert message in str(info.value)


def test_legacy_field_names_are_accepted(roots: dict[str, Path]) -> None:
    provider = TransferProvider(CollectionMap.from_dict(roots), url=LEGACY_TRANSFER_URL)
    result = provider.run(
        {
            "source_endpoint_id": SRC,
            "destination_endpoint_id": DST,
            "transfer_items": [{"source_path": "/run7/frames.h5", "destination_path": "/l.h5"}],
        },
        context=_context(),
    )
    assert result.status is ActionStatus.SUCCEEDED
    assert (roots[DST] / "l.h5").stat().st_size == 11000


def test_transfer_state_in_a_flow(tmp_path: Path, roots: dict[str, Path]) -> None:
    db = tmp_path / "state.db"
    engine = LocalEngine(db, default_providers(db, collections=roots))
    defn = {
        "StartAt": "TransferIn",
        "States": {
            "TransferIn": {
                "Type": "Action",
                "ActionUrl": TRANSFER_URL,
                "Parameters": {
                    "source_endpoint.$": "$.input.source.id",
                    "destination_endpoint.$": "$.input.dest.id",
                    "DATA": [
                        {
                            "source_path.$": "$.input.source.path",
                            "destination_path.=": (
                                "input.dest.path + '/' + pathsplit(input.source.path)[1]"
                            ),
                        }
                    ],
                    "verify_checksum": True,
                },
                "ResultPath": "$.TransferIn",
                "WaitTime": 60,
                "End": True,
            }
        },
    }
    data = {
        "input": {
            "source": {"id": SRC, "path": "/run7/frames.h5"},
            "dest": {"id": DST, "path": "/incoming"},
        }
    }
    rec = engine.run_until_done(engine.start_run(defn, data))
    assert rec.status is RunStatus.SUCCEEDED
    assert rec.output["TransferIn"]["details"]["files_transferred"] == 1
    assert (roots[DST] / "incoming" / "frames.h5").stat().st_size == 11000
