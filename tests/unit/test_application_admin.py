"""The admin takes no part in negotiations: the application service itself refuses it (403), not
only the API's dependency, so no door can hand it an admin and get a 404 or a 500 instead."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from services.application.errors import ADMIN_TAKES_NO_PART, Refusal
from services.application.hub import Hub
from services.application.security import Caller, as_party
from services.application.service import Application

ADMIN = Caller(organisation_id="admin", name="Admin", role="admin")
MEMBER = Caller(organisation_id="uni", name="University", role="member")


def refused(error: pytest.ExceptionInfo[Refusal]) -> tuple[int, str]:
    return error.value.status, error.value.detail


async def test_the_service_refuses_the_admin_before_anything_else() -> None:
    nothing: Any = SimpleNamespace()  # the refusal comes before the service touches anything
    with pytest.raises(Refusal) as read:
        Hub.read(nothing, ADMIN, "n-1", lambda state, viewer: None)
    with pytest.raises(Refusal) as execute:
        await Hub.execute(nothing, ADMIN, nothing, None, "/v1/negotiations/n-1/abandon")
    with pytest.raises(Refusal) as opening:
        await Application.opening(nothing, ADMIN, "Cloud", "vendor", [], None)
    with pytest.raises(Refusal) as invitation:
        await Application.invitation(nothing, ADMIN, "n-1", "uni", 1)
    for error in (read, execute, opening, invitation):
        assert refused(error) == (403, ADMIN_TAKES_NO_PART)
    assert as_party(MEMBER) is MEMBER
