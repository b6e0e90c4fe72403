"""Finding and loading descriptors: the packaged ones and the user's.

Packaged descriptors are the ``*.toml`` files shipped in this package. A user
adds or overrides descriptors in ``$XPCS_FLOWS_CONFIG/deployments/`` (default
``$XDG_CONFIG_HOME/xpcs-flows/deployments/``, i.e.
``~/.config/xpcs-flows/deployments/``). A user file named like a packaged one
is merged over it (tables merged key by key, other values replaced), so a user
fills only the placeholders; any other name is a new, complete descriptor.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from deployments.model import Deployment, parse_deployment
from xpcs_kernel.errors import ConfigurationError

__all__ = ["DeploymentSet", "load_deployments", "user_config_dir"]

CONFIG_ENV = "XPCS_FLOWS_CONFIG"


def user_config_dir() -> Path:
    """The directory of the user's descriptors."""
    root = os.environ.get(CONFIG_ENV)
    if root:
        return Path(root).expanduser() / "deployments"
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "xpcs-flows" / "deployments"


@dataclass
class DeploymentSet:
    """Every known descriptor: the valid ones and, per name, why others are not."""

    deployments: dict[str, Deployment] = field(default_factory=dict)
    problems: dict[str, ConfigurationError] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Deployment]:
        return iter(self.deployments[n] for n in sorted(self.deployments))

    def __len__(self) -> int:
        return len(self.deployments)

    def names(self) -> list[str]:
        """Every descriptor name, valid or not, sorted."""
        return sorted(set(self.deployments) | set(self.problems))

    def get(self, name: str) -> Deployment:
        """The valid descriptor ``name``.

        Raises
        ------
        ConfigurationError
            Its validation error, or "unknown deployment" naming the known ones.
        """
        if name in self.deployments:
            return self.deployments[name]
        if name in self.problems:
            raise self.problems[name]
        raise ConfigurationError(
            "unknown deployment",
            field="deployment",
            expected="one of " + ", ".join(self.names()),
            found=name,
        )


def _read(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"not valid TOML: {exc}", source=source) from None


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = _merge(old, value)
        else:
            merged[key] = value
    return merged


def packaged_documents() -> dict[str, tuple[str, dict[str, Any]]]:
    """The packaged descriptors as ``name -> (origin, parsed TOML)``."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for entry in resources.files("deployments").iterdir():
        if entry.name.endswith(".toml") and entry.is_file():
            origin = f"deployments/{entry.name}"
            found[entry.name[: -len(".toml")]] = (origin, _read(entry.read_text(), origin))
    return found


def load_deployments(
    config_dir: str | os.PathLike[str] | None = None, *, packaged: bool = True
) -> DeploymentSet:
    """Load and validate every descriptor.

    Parameters
    ----------
    config_dir
        The user's descriptor directory (default :func:`user_config_dir`);
        a missing directory is no error.
    packaged
        Whether to start from the packaged descriptors.

    Returns
    -------
    DeploymentSet
        Invalid descriptors (unfilled placeholders included) are kept in
        ``problems`` rather than raised, so one bad file does not hide the others.
    """
    docs = packaged_documents() if packaged else {}
    folder = Path(config_dir) if config_dir is not None else user_config_dir()
    result = DeploymentSet()
    user_files = sorted(folder.glob("*.toml")) if folder.is_dir() else []
    for path in user_files:
        name = path.stem
        try:
            data = _read(path.read_text(), str(path))
        except ConfigurationError as exc:
            result.problems[name] = exc
            docs.pop(name, None)
            continue
        if name in docs:
            origin, base = docs[name]
            docs[name] = (f"{origin} + {path}", _merge(base, data))
        else:
            docs[name] = (str(path), data)
    for name, (origin, data) in sorted(docs.items()):
        try:
            result.deployments[name] = parse_deployment(name, data, source=origin)
        except ConfigurationError as exc:
            result.problems[name] = exc
    return result
