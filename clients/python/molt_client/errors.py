"""Errors raised by the molt client."""
from __future__ import annotations

from typing import Optional


class MoltError(Exception):
    """Base class of every error this package raises."""


class MoltConfigError(MoltError):
    """The data dir has no running agent, no token file, or an unsafe one."""


class MoltConnectionError(MoltError):
    """The agent's local API could not be reached (refused, reset, timed out)."""


class MoltApiError(MoltError):
    """The API answered an error: ``{"error": {"code", "message", "field"?}}``.

    ``code`` is the MoltSpeak error code (``E_TIMEOUT``, ``E_INVALID_PARAM``, …),
    ``status`` the HTTP status, ``field`` the offending field when one is named.
    """

    def __init__(self, message: str, code: str, status: int, field: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.field = field

    def __str__(self) -> str:
        where = f" (field {self.field})" if self.field else ""
        return f"{self.code} [HTTP {self.status}]: {self.message}{where}"
