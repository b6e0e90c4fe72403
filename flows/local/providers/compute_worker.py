"""Worker process of the local Compute provider (run as ``python -c <this source>``).

Reads a JSON request file ``{"function", "args", "kwargs"}`` whose values are
Globus Compute serialized strings, deserializes the function the way an
endpoint does (its source is executed in a fresh namespace, so anything it
does not import itself is missing), calls it and writes a JSON reply file
``{"ok": true, "result": <serialized>}`` or ``{"ok": false, "error",
"exception"}`` with the remote traceback text.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from globus_compute_sdk.serialize import ComputeSerializer

__all__ = ["main"]


def main(argv: list[str]) -> int:
    """Run one task; ``argv`` is ``[request_path, reply_path]``."""
    request_path, reply_path = Path(argv[0]), Path(argv[1])
    request = json.loads(request_path.read_text())
    serde = ComputeSerializer()
    try:
        function = serde.deserialize(request["function"])
        args = serde.deserialize(request["args"])
        kwargs = serde.deserialize(request["kwargs"])
        result = function(*args, **kwargs)
        reply = {"ok": True, "result": serde.serialize(result)}
    except Exception as exc:  # reported to the parent as the task's failure
        reply = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "exception": traceback.format_exc(),
        }
    tmp = reply_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(reply))
    tmp.replace(reply_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
