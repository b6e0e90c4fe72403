"""Globus Compute endpoint user-config templates shipped with the descriptors.

The templates (``endpoint_templates/<name>.yaml.j2``) are rendered by the
endpoint itself on the facility, with per-run values from the flow's
``user_endpoint_config``; :func:`render_endpoint_template` renders them here
(for checks and for ``xpcs-flows`` to show what a run will request). The
shared ``user_config_schema.json`` limits what a run may pass.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any

from xpcs_kernel.errors import ConfigurationError

__all__ = [
    "endpoint_template_names",
    "endpoint_template_text",
    "render_endpoint_template",
    "required_values",
    "user_config_schema",
]

_FOLDER = "endpoint_templates"
_USED = re.compile(r"\{\{\s*\(?\s*([A-Za-z_][A-Za-z0-9_]*)")
_DEFAULTED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\|\s*default\(")


def endpoint_template_names() -> list[str]:
    """The deployments that ship an endpoint template."""
    folder = resources.files("deployments").joinpath(_FOLDER)
    return sorted(
        e.name[: -len(".yaml.j2")] for e in folder.iterdir() if e.name.endswith(".yaml.j2")
    )


def endpoint_template_text(name: str) -> str:
    """The raw Jinja template for deployment ``name``."""
    if name not in endpoint_template_names():
        raise ConfigurationError(
            "no endpoint template",
            field="deployment",
            expected=", ".join(endpoint_template_names()),
            found=name,
        )
    return resources.files("deployments").joinpath(_FOLDER, f"{name}.yaml.j2").read_text()


def user_config_schema() -> dict[str, Any]:
    """The JSON Schema of per-run endpoint values."""
    text = resources.files("deployments").joinpath(_FOLDER, "user_config_schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def required_values(name: str) -> set[str]:
    """The variables of the template of ``name`` that have no ``default``."""
    text = endpoint_template_text(name)
    used = set(_USED.findall(text))
    return used - set(_DEFAULTED.findall(text))


def render_endpoint_template(name: str, values: Mapping[str, Any]) -> str:
    """Render the template of ``name`` with ``values`` (needs ``jinja2``).

    Raises
    ------
    ConfigurationError
        When a variable without a default is missing from ``values``.
    """
    import jinja2.sandbox

    missing = sorted(required_values(name) - set(values))
    if missing:
        raise ConfigurationError(
            f"missing values for the {name} endpoint template: {', '.join(missing)}",
            field=missing[0],
        )
    env = jinja2.sandbox.SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
    return env.from_string(endpoint_template_text(name)).render(**values)
