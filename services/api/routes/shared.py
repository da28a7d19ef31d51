"""The error responses the OpenAPI document lists for every read and every command."""

from __future__ import annotations

from services.api.problems import problems

READ = problems(401, 403, 404, 422)
COMMAND = problems(401, 403, 404, 409, 422, 503)
