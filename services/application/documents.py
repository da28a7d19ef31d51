"""The documents of the application service that are not contracts of the core: what a door
sends to open a negotiation or invite a member, and the answers to commands and reads.

The negotiation documents themselves (summary, joint demand, demand versions, state, positions)
are the contracts in ``schemas.documents``; these are the envelopes around them, the same for
the API and the dashboard.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from schemas.common import Frozen, Identifier, LongText, ShortText, Slug, Weight
from schemas.negotiation import (
    CheckVerdict,
    Decision,
    ItemResponse,
    PersonRole,
    Phase,
    PlannedCommitment,
    Policy,
    Position,
    RequirementItem,
)

Email = Annotated[
    str,
    Field(
        min_length=3,
        max_length=320,
        pattern=r"^[^@\s<>\x00-\x1f]+@[^@\s<>\x00-\x1f]+\.[^@\s<>\x00-\x1f]+$",
        description="An e-mail address; matched without regard to case.",
    ),
]
"""The hub sends no mail: an address is only matched against the identity provider's verified
``email`` claim at a person's first single sign-on, so a plain shape check is all it needs."""


class PersonCreate(Frozen):
    """A person to invite into the calling organisation (or, by the admin, an organisation's owner)."""

    name: ShortText
    email: Email | None = None
    role: PersonRole = "contributor"


class PersonPublic(Frozen):
    id: Identifier
    organisation_id: Identifier
    name: ShortText
    email: str | None = None
    role: PersonRole
    status: Literal["active", "removed"]
    signed_in_with_sso: bool
    """Whether single sign-on has bound the person (an invitation by e-mail is bound at the first)."""
    created_at: datetime


class PersonCreated(PersonPublic):
    personal_token: str | None = None
    """A first personal token, shown once, when the hub has no single sign-on (``KOOPKRACHT_OIDC_*``
    unset): how the person signs in to the dashboard. With single sign-on, none: the person signs
    in with it and makes their own tokens."""


class PersonChange(Frozen):
    role: PersonRole


class OrganisationCreate(Frozen):
    name: ShortText
    role: Literal["coordinator", "member", "vendor"]
    owner: PersonCreate | None = None
    """The organisation's first owner (its ``role`` is ``owner`` whatever is sent)."""


class OrganisationPublic(Frozen):
    id: Identifier
    name: ShortText
    role: Literal["admin", "coordinator", "member", "vendor"]
    created_at: datetime | None = None
    person: PersonPublic | None = None
    """``GET /me`` by a person: that person."""


class OrganisationCreated(OrganisationPublic):
    api_key: str
    """The organisation's integration key, shown once: only its hash is stored."""
    owner: PersonCreated | None = None


class TokenCreate(Frozen):
    label: Annotated[str, Field(min_length=1, max_length=100)] = "personal token"


class TokenPublic(Frozen):
    id: str
    """The token's public key id."""
    label: str
    created_at: datetime
    last_used_at: datetime | None = None
    """Within ``KOOPKRACHT_KEY_CACHE_TTL_S`` (10 s) of the last request it let in."""
    revoked_at: datetime | None = None


class TokenCreated(TokenPublic):
    token: str
    """Shown once: only its hash is stored."""


MAX_COMMENT_LENGTH = 2000


class CommentCreate(Frozen):
    """A comment on the organisation's draft of an item."""

    text: Annotated[str, Field(min_length=1, max_length=MAX_COMMENT_LENGTH)]


class PersonNamed(Frozen):
    """A person of the caller's own organisation, by id and name."""

    id: Identifier
    name: ShortText


class CommentView(Frozen):
    id: str
    person: PersonNamed
    text: str
    created_at: datetime


class DraftView(Frozen):
    """The organisation's draft of its position on an item, with its comment thread (oldest first).
    Seen only by the organisation's people (and its integration key)."""

    item_key: Slug
    position: Position
    """What adopting the draft states: the body of ``PUT …/positions/{item_key}``."""
    version: str
    """Names this content of the draft (its ``ETag``): an adoption sent with ``If-Match: "<version>"``
    states the draft only if it still is what the approver read (412 otherwise)."""
    updated_by: PersonNamed
    updated_at: datetime
    adopted_at: datetime | None = None
    """When this very draft was adopted; null while it has not been, or changed since."""
    adopted_by: PersonNamed | None = None
    comments: tuple[CommentView, ...] = ()


class CatalogueRef(Frozen):
    """An item of the built-in catalogue, by its key."""

    key: Slug


class NegotiationCreate(Frozen):
    title: ShortText
    vendor_id: Identifier
    items: Annotated[list[CatalogueRef | RequirementItem], Field(min_length=1, max_length=500)]
    policy: Policy | None = None


class NegotiationListing(Frozen):
    """One line of ``GET /v1/negotiations``."""

    id: Identifier
    title: ShortText
    phase: Phase
    sequence: int
    your_role: Literal["coordinator", "member", "vendor"]
    demand_version: int | None
    round: int
    opened_at: datetime
    updated_at: datetime


class MemberInvite(Frozen):
    organisation_id: Identifier
    weight: Weight = 1


class VendorResponseCreate(Frozen):
    demand_version: int = Field(strict=True, ge=1)
    items: Annotated[list[ItemResponse], Field(min_length=1, max_length=500)]


class VendorResponse(Frozen):
    negotiation_id: Identifier
    round: int
    demand_version: int
    responded_at: datetime
    items: tuple[ItemResponse, ...]


class ClarificationCreate(Frozen):
    item_key: Slug
    question: Annotated[str, Field(min_length=1, max_length=4000)]


class ClarificationAnswer(Frozen):
    answer: Annotated[str, Field(min_length=1, max_length=4000)]


class AgreementProposal(Frozen):
    negotiation_id: Identifier
    phase: Phase
    demand_version: int
    round: int
    proposed_at: datetime


class EndorsementCreate(Frozen):
    decision: Decision
    comment: LongText | None = None


class EndorsementResult(Frozen):
    """The endorsement, and the outcome when it decided the agreement."""

    negotiation_id: Identifier
    decision: Decision
    comment: str | None
    given_at: datetime
    outcome: Literal["agreed", "rejected"] | None


class PlanCreate(Frozen):
    """The vendor's action plan: a due date for every commitment not yet planned (SPEC 9)."""

    items: tuple[PlannedCommitment, ...] = Field(min_length=1, max_length=500)


class PlanRejection(Frozen):
    comment: Annotated[str, Field(min_length=1, max_length=4000)]


class DeliveryCreate(Frozen):
    evidence: Annotated[str, Field(min_length=1, max_length=4000)]
    """What shows it is done: a text or a URL."""


class CheckCreate(Frozen):
    verdict: CheckVerdict
    comment: LongText | None = None


class RegressionCreate(Frozen):
    comment: Annotated[str, Field(min_length=1, max_length=4000)]


class ReopenRequest(Frozen):
    items: tuple[Slug, ...] = Field(min_length=1, max_length=500)
    """The commitments to negotiate again."""
    reason: LongText | None = None


class AbandonRequest(Frozen):
    reason: LongText | None = None


class Abandonment(Frozen):
    negotiation_id: Identifier
    phase: Phase
    reason: str | None
    abandoned_at: datetime


class FeedEntry(Frozen):
    """One event of the change feed, as the caller may see it."""

    sequence: int
    type: str
    occurred_at: datetime
    data: dict[str, Any]
    event_id: str | None = None
    previous_hash: str | None = None
    hash: str | None = None
    """The event's id and its links in the negotiation's hash chain (SPEC 7.1): for the
    coordinator, and for a member on the events it sees whole; never for the vendor. With them the
    event's canonical JSON is ``data`` plus the envelope and ``negotiation_id``."""


class ChangeFeed(Frozen):
    """A page of the change feed. Continue with ``after=next_after`` while ``more`` is true.

    Events the caller may not see are left out, but still move ``next_after`` on.
    """

    negotiation_id: Identifier
    events: tuple[FeedEntry, ...]
    next_after: int
    more: bool


__all__ = ["RequirementItem"]
