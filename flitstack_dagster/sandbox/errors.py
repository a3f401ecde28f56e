"""Pipedrive-style error bodies."""

from __future__ import annotations

from typing import Any

REASONS = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    410: "Gone",
    413: "Request entity too large",
    415: "Unsupported media type",
    422: "Unprocessable entity",
    429: "Request over limit",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
}


class ApiError(Exception):
    def __init__(self, status: int, error: str, error_info: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.error_info = error_info
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.error, self.error_info, self.code)


def error_body(status: int, error: str, error_info: str | None = None, code: str | None = None) -> dict:
    body: dict[str, Any] = {
        "success": False,
        "error": error,
        "error_info": error_info or _default_info(status),
        "data": None,
        "additional_data": None,
        "errorCode": status,
    }
    if code:
        body["code"] = code
    return body


def _default_info(status: int) -> str:
    if status == 401:
        return "Please check developers.pipedrive.com for more information about Pipedrive API."
    if status == 429:
        return "Please check developers.pipedrive.com/docs/api/v1/rate-limiting for more information."
    return "Please check developers.pipedrive.com for more information about Pipedrive API."


def bad_request(msg: str, info: str | None = None) -> ApiError:
    return ApiError(400, msg, info)


def not_found(what: str = "Not found") -> ApiError:
    return ApiError(404, what)
