"""The local Globus Transfer action provider: copy with checksum verification.

A :class:`CollectionMap` maps collection (endpoint) ids to local directories.
Each ``DATA`` item is copied under a temporary name in the destination
folder; with ``verify_checksum`` the SHA-256 of the source and of the copy are
compared before the copy is renamed into place. A mismatch fails the action
(the partial copy is removed), as Globus Transfer fails a task whose checksums
differ after its retries.

``sync_level`` follows Globus: 0 skips files that exist, 1 those of the same
size, 2 those not older than the source, 3 those with the same checksum.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from flows.local.providers.base import ActionProvider, require, unable_to_run
from flows.local.records import ActionContext, ActionResult
from tools.action_urls import TRANSFER_URL
from xpcs_kernel.digest import sha256_file  # also this module's public name

__all__ = ["CollectionMap", "TransferProvider", "sha256_file"]


@dataclass(frozen=True)
class CollectionMap:
    """Collection id -> local root directory, for the local Transfer provider.

    A collection path (``/data/a.h5``, ``/~/a.h5`` or ``a.h5``) is resolved
    under the root; a path that escapes the root is refused.
    """

    roots: Mapping[str, Path]

    @classmethod
    def from_dict(cls, roots: Mapping[str, str | os.PathLike[str]]) -> CollectionMap:
        """Build from ``{collection_id: directory}``."""
        return cls({str(k): Path(v) for k, v in roots.items()})

    def resolve(self, collection: str, path: str) -> Path:
        """The local path of ``path`` on ``collection``; ``ActionUnableToRun`` if unknown."""
        if collection not in self.roots:
            raise unable_to_run(
                f"collection {collection} has no local directory in the CollectionMap"
            )
        root = Path(self.roots[collection]).resolve()
        text = path[3:] if path.startswith("/~/") else path
        rel = PurePosixPath(text.lstrip("/"))
        if ".." in rel.parts:
            raise unable_to_run(f"path {path!r} on collection {collection} escapes its root")
        return root.joinpath(*rel.parts)


def _normalize(body: Mapping[str, Any]) -> dict[str, Any]:
    """Accept the legacy Transfer AP field names as well."""
    out = dict(body)
    for new, old in (
        ("source_endpoint", "source_endpoint_id"),
        ("destination_endpoint", "destination_endpoint_id"),
        ("DATA", "transfer_items"),
    ):
        if new not in out and old in out:
            out[new] = out.pop(old)
    return out


def _same(src: Path, dst: Path, level: int) -> bool:
    if not dst.is_file():
        return False
    if level <= 0:
        return True
    s, d = src.stat(), dst.stat()
    if s.st_size != d.st_size:
        return False
    if level == 1:
        return True
    if level == 2:
        return d.st_mtime >= s.st_mtime
    return sha256_file(src) == sha256_file(dst)


class TransferProvider(ActionProvider):
    """Serves :data:`~tools.action_urls.TRANSFER_URL` by local copies.

    Parameters
    ----------
    collections
        Where each collection lives on this machine.
    url
        The action URL served: :data:`~tools.action_urls.TRANSFER_URL`
        (body ``source_endpoint``, ``destination_endpoint``, ``DATA``) or
        :data:`~tools.action_urls.LEGACY_TRANSFER_URL` (body
        ``source_endpoint_id``, ``destination_endpoint_id``,
        ``transfer_items``); both spellings are accepted by either.
    copy_file
        The byte copy (``shutil.copyfile`` by default); tests inject a
        corrupting copy to prove the checksum verification.
    """

    def __init__(
        self,
        collections: CollectionMap | Mapping[str, str | os.PathLike[str]],
        *,
        copy_file: Callable[[Path, Path], object] = shutil.copyfile,
        url: str = TRANSFER_URL,
    ) -> None:
        self.url = url
        self.collections = (
            collections
            if isinstance(collections, CollectionMap)
            else CollectionMap.from_dict(collections)
        )
        self.copy_file = copy_file

    def run(self, body: Mapping[str, Any], *, context: ActionContext) -> ActionResult:
        """Copy every ``DATA`` item; FAILED on a missing source or a checksum mismatch."""
        body = _normalize(body)
        src_ep = require(body, "source_endpoint", str)
        dst_ep = require(body, "destination_endpoint", str)
        items = require(body, "DATA", list)
        verify = bool(body.get("verify_checksum", False))
        level = body.get("sync_level")
        level = None if level is None else int(level)
        pairs: list[tuple[Path, Path]] = []
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise unable_to_run(f"DATA[{i}] must be an object")
            src = self.collections.resolve(src_ep, require(item, "source_path", str))
            dst = self.collections.resolve(dst_ep, require(item, "destination_path", str))
            if not src.exists():
                return ActionResult.failed(
                    f"source {item['source_path']} does not exist on collection {src_ep}",
                    self._summary(body, context, 0, 0, 0),
                )
            if src.is_dir() and not item.get("recursive", False):
                return ActionResult.failed(
                    f"source {item['source_path']} is a directory; set recursive: true",
                    self._summary(body, context, 0, 0, 0),
                )
            pairs.extend(self._expand(src, dst))
        copied = skipped = nbytes = 0
        for src, dst in pairs:
            if context.cancelled.is_set():
                return ActionResult.failed(
                    "transfer cancelled", self._summary(body, context, 0, 0, 0)
                )
            if level is not None and _same(src, dst, level):
                skipped += 1
                continue
            error = self._copy_one(src, dst, verify)
            if error:
                return ActionResult.failed(
                    error, self._summary(body, context, copied, skipped, nbytes)
                )
            copied += 1
            nbytes += dst.stat().st_size
        return ActionResult.succeeded(self._summary(body, context, copied, skipped, nbytes))

    @staticmethod
    def _expand(src: Path, dst: Path) -> Iterator[tuple[Path, Path]]:
        if src.is_file():
            yield src, dst
            return
        for path in sorted(src.rglob("*")):
            if path.is_file():
                yield path, dst / path.relative_to(src)

    def _copy_one(self, src: Path, dst: Path, verify: bool) -> str | None:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.partial-{uuid.uuid4().hex[:12]}")
        try:
            self.copy_file(src, tmp)
            if verify:
                want, got = sha256_file(src), sha256_file(tmp)
                if want != got:
                    return (
                        f"checksum mismatch copying {src} to {dst}:"
                        f" source sha256 {want}, destination sha256 {got}"
                    )
            os.replace(tmp, dst)
        finally:
            tmp.unlink(missing_ok=True)
        return None

    @staticmethod
    def _summary(
        body: Mapping[str, Any], context: ActionContext, copied: int, skipped: int, nbytes: int
    ) -> dict[str, Any]:
        return {
            "task_id": context.action_id,
            "label": body.get("label"),
            "source_endpoint_id": body.get("source_endpoint"),
            "destination_endpoint_id": body.get("destination_endpoint"),
            "files_transferred": copied,
            "files_skipped": skipped,
            "bytes_transferred": nbytes,
            "verify_checksum": bool(body.get("verify_checksum", False)),
        }
