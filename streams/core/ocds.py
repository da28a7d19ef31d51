"""The agreement as an Open Contracting (OCDS 1.1.5) release.

The cooperative is the buyer and procuring entity, the vendor the supplier, the members
interested parties (with their weights: the export is for the coordinator and members only).
The tender's items are those of the agreed demand version (after a reopening, each item as its
latest agreement settled it), with their targets; the award and the contract
carry the vendor's offer on each item, as agreed by endorsement. Fields OCDS has no place for
(the item's kind, target, verdict and offered value) are kept under ``koopkracht`` in each item,
as OCDS allows additional fields.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from schemas.common import number_to_json
from schemas.documents import DemandVersion, PublishedItem
from streams.core.state import Commitment, NegotiationState, Outcome

OCDS_VERSION = "1.1.5"
CATALOGUE_SCHEME = "x_koopkracht"


class NoAgreement(ValueError):
    """The negotiation has not reached an agreement (yet)."""


def _value(value: Any) -> Any:
    if isinstance(value, Fraction):
        return number_to_json(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _target_words(item: PublishedItem) -> str:
    unit = f" {item.unit}" if item.unit else ""
    target = item.target
    if item.kind == "boolean":
        return "required"
    if item.kind == "at_most":
        return f"at most {_value(target)}{unit}"
    if item.kind == "at_least":
        return f"at least {_value(target)}{unit}"
    assert isinstance(target, tuple)
    return "one of " + ", ".join(target)


def _organisation(organisation_id: str, name: str, roles: list[str], **details: Any) -> dict[str, Any]:
    party: dict[str, Any] = {"id": organisation_id, "name": name, "roles": roles}
    if details:
        party["details"] = details
    return party


AGREED_PHASES = ("agreed", "implementing", "fulfilled")
"""The phases in which the agreement stands (after a reopening it is being negotiated again)."""


def agreement(state: NegotiationState) -> Outcome:
    agreed = [outcome for outcome in state.outcomes if outcome.agreed]
    if state.phase not in AGREED_PHASES or not agreed:
        raise NoAgreement(f"negotiation {state.negotiation_id} has no agreement (it is {state.phase})")
    return agreed[-1]


def milestone_status(commitment: Commitment) -> str:
    """OCDS milestone status: ``met``; ``notMet`` when overdue or found not met (and not yet
    delivered again); ``scheduled`` otherwise."""
    if commitment.status == "met":
        return "met"
    if commitment.status == "overdue":
        return "notMet"
    if commitment.status == "open" and commitment.verdict is not None and commitment.verdict.verdict == "not_met":
        return "notMet"
    return "scheduled"


def milestones(state: NegotiationState) -> list[dict[str, Any]]:
    """SPEC 9: ``contracts[0].implementation.milestones``, one per commitment."""
    found = []
    for commitment in state.commitments.values():
        item = state.items[commitment.key]
        milestone: dict[str, Any] = {
            "id": f"{state.negotiation_id}-{commitment.key}",
            "title": item.title,
            "type": "delivery",
            "status": milestone_status(commitment),
            "koopkracht": {
                "key": commitment.key,
                "status": commitment.status,
                "deliveries": commitment.deliveries,
            },
        }
        if commitment.note:
            milestone["description"] = commitment.note
        if commitment.due is not None:
            milestone["dueDate"] = commitment.due.isoformat()
        if commitment.met_at is not None:
            milestone["dateMet"] = commitment.met_at.isoformat()
        found.append(milestone)
    return found


def _distinct(versions: list[DemandVersion]) -> list[DemandVersion]:
    return list({v.version: v for v in versions}.values())


def release(state: NegotiationState, ocid_prefix: str) -> dict[str, Any]:
    """The agreed negotiation as one OCDS release (tags award and contract)."""
    outcome = agreement(state)
    version = state.versions[outcome.demand_version - 1]
    # After a reopening the last agreement covers only the reopened items: the agreement as a whole
    # is each item as its latest agreement settled it.
    agreed_versions = [state.versions[o.demand_version - 1] for o in state.outcomes if o.agreed]
    latest_terms = {item.key: item for agreed in agreed_versions for item in agreed.items}
    agreed_items = [latest_terms[key] for key in state.items if key in latest_terms]
    date = outcome.at.isoformat()
    nid = state.negotiation_id
    buyer = {"id": state.coordinator_id, "name": state.coordinator_name}
    supplier = {"id": state.vendor_id, "name": state.vendor_name}
    tender_items = []
    offered_items = []
    for index, item in enumerate(agreed_items, start=1):
        classification = {"scheme": CATALOGUE_SCHEME, "id": item.key, "description": item.category}
        tender_items.append(
            {
                "id": str(index),
                "description": f"{item.title}: {_target_words(item)}",
                "classification": classification,
                **({"unit": {"name": item.unit}} if item.unit else {}),
                "koopkracht": {
                    "key": item.key,
                    "kind": item.kind,
                    "priority": item.priority,
                    "target": _value(item.target),
                },
            }
        )
        current = state.offers.get(item.key)
        if current is None:
            continue
        offer = current.offer
        terms: dict[str, Any] = {"verdict": offer.verdict, "round": offer.round, "demand_version": offer.demand_version}
        if offer.value is not None:
            terms["value"] = _value(offer.value)
        if offer.option is not None:
            terms["option"] = offer.option
        if offer.verdict == "accept":
            words = f"accepted: {_target_words(item)}"
        elif offer.verdict == "counter":
            unit = f" {item.unit}" if item.unit else ""
            words = f"offered: {offer.option if offer.option is not None else f'{_value(offer.value)}{unit}'}"
        else:
            words = "rejected"
        offered_items.append(
            {
                "id": str(index),
                "description": f"{item.title}: {words}" + (f" ({offer.comment})" if offer.comment else ""),
                "classification": classification,
                **({"unit": {"name": item.unit}} if item.unit else {}),
                "koopkracht": {"key": item.key, **terms},
            }
        )
    return {
        "ocid": f"{ocid_prefix}-{nid}",
        "id": f"{nid}-{state.sequence}",
        "date": date,
        # implementation: once a plan was accepted (some commitment has a due date)
        "tag": ["award", "contract", *(["implementation"] if any(c.due for c in state.commitments.values()) else [])],
        # The head of the negotiation's hash chain at the agreement (SPEC 7.1): the hash of the
        # AgreementReached event, which commits to every event before it.
        "koopkracht": {"head_hash": outcome.head_hash, "sequence": outcome.sequence},
        "initiationType": "tender",
        "language": "en",
        "parties": [
            _organisation(state.coordinator_id, state.coordinator_name, ["buyer", "procuringEntity"]),
            _organisation(state.vendor_id, state.vendor_name, ["supplier", "tenderer"]),
            *(
                _organisation(m.organisation_id, m.name, ["interestedParty"], weight=m.weight)
                for m in state.members.values()
            ),
        ],
        "buyer": buyer,
        "tender": {
            "id": f"{nid}-tender",
            "title": state.title,
            "description": ", ".join(
                f"Joint demand, version {v.version} (SHA-256 {v.hash})" for v in _distinct(agreed_versions)
            ),
            "status": "complete",
            "procuringEntity": buyer,
            "items": tender_items,
            "hasEnquiries": bool(state.clarifications),
            "numberOfTenderers": 1,
            "tenderers": [supplier],
            "datePublished": version.published_at.isoformat(),
        },
        "awards": [
            {
                "id": f"{nid}-award-1",
                "title": state.title,
                "description": (
                    f"The vendor's offers as agreed (the last agreement: round {outcome.round}, endorsed by "
                    f"{outcome.accepting_share:.0%} of the coalition's weight)"
                ),
                "status": "active",
                "date": date,
                "suppliers": [supplier],
                "items": offered_items,
            }
        ],
        "contracts": [
            {
                "id": f"{nid}-contract-1",
                "awardID": f"{nid}-award-1",
                "title": state.title,
                "status": "active",
                "dateSigned": date,
                "items": offered_items,
                **({"implementation": {"milestones": milestones(state)}} if state.commitments else {}),
            }
        ],
    }
