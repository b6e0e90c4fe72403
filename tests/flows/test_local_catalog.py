"""The local search catalog and the Search ingest provider."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.errors import ActionError
from flows.local import (
    ActionContext,
    LocalCatalog,
    LocalEngine,
    RunStatus,
    SearchIngestProvider,
    default_providers,
)
from tools.action_urls import SEARCH_INGEST_URL


def test_ingest_twice_keeps_one_updated_entry(tmp_path: Path) -> None:
    catalog = LocalCatalog(tmp_path / "state.db")
    first = catalog.ingest("xpcs", "globus://c/run7.h5", {"tau": 1.0}, ["public"])
    second = catalog.ingest("xpcs", "globus://c/run7.h5", {"tau": 2.0, "q": [0.1]}, ["u:me"])
    assert (first.version, second.version) == (1, 2)
    entries = catalog.list("xpcs")
    assert len(entries) == 1
    assert entries[0].content == {"tau": 2.0, "q": [0.1]}
    assert entries[0].visible_to == ("u:me",)
    assert entries[0].created_time == first.created_time
    catalog.ingest("xpcs", "globus://c/run8.h5", {"tau": 3.0})
    catalog.ingest("other", "globus://c/run7.h5", {"tau": 9.0})
    assert [e.subject for e in catalog.list("xpcs")] == [
        "globus://c/run7.h5",
        "globus://c/run8.h5",
    ]
    assert catalog.delete("xpcs", "globus://c/run8.h5") is True
    assert catalog.delete("xpcs", "globus://c/run8.h5") is False
    assert catalog.get("xpcs", "globus://c/run8.h5") is None
    assert catalog.get("other", "globus://c/run7.h5") is not None


def test_catalog_persists_across_objects(tmp_path: Path) -> None:
    LocalCatalog(tmp_path / "state.db").ingest("i", "s", {"v": 1})
    entry = LocalCatalog(tmp_path / "state.db").get("i", "s")
    assert entry is not None
    assert entry.content == {"v": 1}


def test_provider_rejects_a_body_without_content(tmp_path: Path) -> None:
    provider = SearchIngestProvider(LocalCatalog(tmp_path / "state.db"))
    context = ActionContext("r", "Publish", "a", SEARCH_INGEST_URL, "tester")
    with pytest.raises(ActionError) as info:
        provider.run({"search_index": "i", "subject": "s"}, context=context)
    assert info.value.code == "ActionUnableToRun"
    assert "content" in str(info.value)


def test_publish_state_twice_updates_the_same_subject(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    engine = LocalEngine(db, default_providers(db))
    defn = {
        "StartAt": "Publish",
        "States": {
            "Publish": {
                "Type": "Action",
                "ActionUrl": SEARCH_INGEST_URL,
                "Parameters": {
                    "search_index.$": "$.input.index",
                    "subject.=": "'xpcs://' + input.name",
                    "visible_to": ["public"],
                    "content.$": "$.input.doc",
                },
                "ResultPath": "$.Publish",
                "End": True,
            }
        },
    }
    for tau in (1.5, 2.5):
        data = {"input": {"index": "idx", "name": "run7", "doc": {"tau": tau}}}
        rec = engine.run_until_done(engine.start_run(defn, data))
        assert rec.status is RunStatus.SUCCEEDED
    assert rec.output["Publish"]["details"]["entry_version"] == 2
    entries = LocalCatalog(db).list("idx")
    assert [(e.subject, e.content) for e in entries] == [("xpcs://run7", {"tau": 2.5})]
