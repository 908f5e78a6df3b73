"""JSON for the dashboard's API: stored documents made JSON-safe, and error responses.

BSON values JSON cannot carry become what a browser can show: dates as ISO 8601 strings
with a ``Z`` (stored dates are naive UTC), ObjectIds and other values as text, NaN and
infinities as ``null``; the escaped config keys (``．`` for ``.``) are shown as they are.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from starlette.responses import JSONResponse

__all__ = ["error_response", "jsonable", "JSON"]


def jsonable(value: Any) -> Any:
    """``value`` with every part JSON can encode (recursively)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value.isoformat(timespec="milliseconds") + "Z"
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return str(value)


class JSON(JSONResponse):
    """A JSON response of any stored value (see :func:`jsonable`), never cached."""

    def __init__(self, content: Any, status_code: int = 200) -> None:
        super().__init__(content, status_code=status_code, headers={"Cache-Control": "no-store"})

    def render(self, content: Any) -> bytes:
        return json.dumps(jsonable(content), ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def error_response(status: int, message: str, **extra: Any) -> JSON:
    """``{"error": message, ...}`` with HTTP ``status``."""
    return JSON({"error": message, **extra}, status_code=status)
