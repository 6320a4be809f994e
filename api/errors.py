"""The one place that turns errors into HTTP responses, and the error body every endpoint documents."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from iamgraph.errors import IamGraphError, InputError, NotFoundError, SnapshotError

log = logging.getLogger("iamgraph.api")


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    """A stable machine-readable word: invalid_request, not_found, unauthorized, forbidden, ..."""
    message: str
    location: str | None = None


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    error: ErrorDetail


class ApiError(Exception):
    """An error with its HTTP status, raised by the API layer itself (auth, limits, missing data)."""

    def __init__(self, status: int, code: str, message: str, *, location: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.location = location
        self.headers = headers


class TimeLimitExceeded(ApiError):
    def __init__(self, seconds: float) -> None:
        super().__init__(503, "time_limit_exceeded",
                         f"the request took longer than the per-request limit of {seconds:g} s; narrow it "
                         "(fewer actions, a smaller batch, a smaller page) and retry")


def _domain_status(exc: IamGraphError) -> tuple[int, str]:
    """Domain errors (iamgraph.errors) -> status and code. Subclasses first."""
    if isinstance(exc, NotFoundError):
        return 404, "not_found"
    if isinstance(exc, InputError):
        return 400, "invalid_input"
    if isinstance(exc, SnapshotError):
        return 409, "snapshot_unusable"
    # Any other deliberate error is about the request's data (e.g. a usage store that cannot answer).
    return 409, "cannot_answer"


def error_response(status: int, code: str, message: str, location: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, location=location))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _validation_message(errors: list[Any]) -> tuple[str, str | None]:
    first = errors[0] if errors else {}
    parts: list[str] = []
    for p in first.get("loc", ()):
        # Tagged unions repeat the tag (who.new_role.new_role.name): say it once.
        if p != "body" and (not parts or parts[-1] != str(p)):
            parts.append(str(p))
    loc = ".".join(parts) or None
    msg = str(first.get("msg", "invalid request"))
    more = f" ({len(errors)} problems in all)" if len(errors) > 1 else ""
    return (f"{loc}: {msg}{more}" if loc else msg + more), loc


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.location, exc.headers)

    @app.exception_handler(IamGraphError)
    async def _domain_error(_: Request, exc: IamGraphError) -> JSONResponse:
        status, code = _domain_status(exc)
        location = exc.location if isinstance(exc, InputError) else None
        return error_response(status, code, str(exc), location)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, loc = _validation_message(list(exc.errors()))
        return error_response(422, "invalid_request", message, loc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # A bug, not the caller's fault: log it with the traceback, tell the caller nothing internal.
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal_error", "internal error; the server log has the details")


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the error statuses a route can return."""
    text = {
        400: "Input that cannot be used (a malformed policy, an unknown ARN form, a JSON body nested too deep or "
             "too large in values, a repeated Authorization header, a token in the URL)",
        401: "Missing or invalid bearer token",
        403: "The token lacks the scope this endpoint needs",
        404: "The principal or resource is not in the snapshot",
        409: "The server's data cannot answer (no usage store loaded, snapshot refused)",
        413: "Request body over the size limit",
        422: "Request does not match the schema or is over a limit",
        429: "Too many requests running or waiting (for the server or for this token); Retry-After says when "
             "to try again",
        500: "A bug: the server log has the details (never expected; tested against with schemathesis)",
        503: "Per-request time limit exceeded (counted from when the work started), or the audit log cannot "
             "be written",
    }
    # Every route authenticates, validates its query and body shape, and may fail unexpectedly.
    wanted = sorted({*statuses, 400, 401, 403, 422, 500})
    return {s: {"model": ErrorBody, "description": text[s]} for s in wanted}
