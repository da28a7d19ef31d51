"""Errors as RFC 9457 problem details (``application/problem+json``), and their OpenAPI entries.

The one place where the API turns a refusal of the application service into problem+json.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.application.errors import Refusal, refusal_document

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger("koopkracht.api")


class ProblemDetail(BaseModel):
    """RFC 9457 problem details; ``field`` names the input at fault, ``errors`` lists each one."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    field: str | None = None
    errors: list[dict[str, Any]] | None = None


def problem_response(problem: Refusal, instance: str | None = None) -> JSONResponse:
    return JSONResponse(
        refusal_document(problem, instance),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refusal)
    return problem_response(exc, request.url.path)


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"there is no {request.url.path}"
    return problem_response(Refusal(exc.status_code, detail, headers=dict(exc.headers or {})), request.url.path)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _location(tuple(error.get("loc", ()))), "message": error.get("msg", "invalid")}
        for error in exc.errors()
    ]
    first = errors[0] if errors else {"field": "body", "message": "invalid"}
    problem = Refusal(
        422, f"{first['field']}: {first['message']}", title="Invalid input", field=first["field"], errors=errors
    )
    return problem_response(problem, request.url.path)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error", path=request.url.path, exc_info=exc)
    problem = Refusal(500, "the hub failed on this request; it has been logged", title="Internal Server Error")
    return problem_response(problem, request.url.path)


EXCEPTION_HANDLERS = {
    Exception: _on_unexpected,
    Refusal: _on_problem,
    StarletteHTTPException: _on_http_exception,
    RequestValidationError: _on_validation_error,
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error statuses."""
    return {
        str(status): {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}},
        }
        for status in statuses
    }
