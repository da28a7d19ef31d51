"""The board's timeline in words: the sentence for each line the core describes
(``streams.core.timeline``), in English here and translated with gettext.

The core decides who is named and who stays "a member"; this module only words it. Every
sentence of ``streams.core.timeline.SENTENCES`` has an entry (a unit test checks it), so a new
event type without words fails the tests, not the board.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from services.dashboard.i18n import N_, ItemWords
from streams.core.timeline import Line

SENTENCES: dict[str, str] = {
    "NegotiationOpened.you": N_("You opened “{title}”"),
    "NegotiationOpened.coordinator": N_("The coordinator opened “{title}”"),
    "NegotiationOpened.coalition": N_("The coalition opened “{title}” with you"),
    "MemberInvited.you": N_("You invited {name} (weight {weight})"),
    "MemberInvited.coordinator": N_("The coordinator invited {name} (weight {weight})"),
    "PolicyChanged.you": N_("You changed the policy"),
    "PolicyChanged.coordinator": N_("The coordinator changed the policy"),
    "PositionStated.you": N_("You stated your position on {item}"),
    "PositionStated.named": N_("{actor} stated its position on {item}"),
    "PositionStated.member": N_("A member stated a position on {item}"),
    "PositionWithdrawn.you": N_("You withdrew your position on {item}"),
    "PositionWithdrawn.named": N_("{actor} withdrew its position on {item}"),
    "PositionWithdrawn.member": N_("A member withdrew a position on {item}"),
    "DemandPublished.you": N_("You published version {version} of the joint demand ({count} items)"),
    "DemandPublished.coordinator": N_(
        "The coordinator published version {version} of the joint demand ({count} items)"
    ),
    "DemandPublished.coalition": N_("The coalition published version {version} ({count} items)"),
    "VendorResponded.you": N_("You answered {count} items in round {round}"),
    "VendorResponded.vendor": N_("The vendor answered {count} items in round {round}"),
    "ClarificationRequested.you": N_("You asked a question about {item}"),
    "ClarificationRequested.vendor": N_("The vendor asked a question about {item}"),
    "ClarificationAnswered.you": N_("You answered the vendor's question about {item}"),
    "ClarificationAnswered.coordinator": N_("The coordinator answered the vendor's question about {item}"),
    "ClarificationAnswered.coalition": N_("The coalition answered your question about {item}"),
    "AgreementProposed.you": N_("You proposed the agreement on round {round}"),
    "AgreementProposed.coordinator": N_("The coordinator proposed the agreement on round {round}"),
    "AgreementProposed.coalition": N_("The coalition is endorsing your offers of round {round}"),
    "EndorsementGiven.you.accept": N_("You accepted the proposed agreement"),
    "EndorsementGiven.you.reject": N_("You rejected the proposed agreement"),
    "EndorsementGiven.named.accept": N_("{actor} accepted the proposed agreement"),
    "EndorsementGiven.named.reject": N_("{actor} rejected the proposed agreement"),
    "EndorsementGiven.member.accept": N_("A member accepted the proposed agreement"),
    "EndorsementGiven.member.reject": N_("A member rejected the proposed agreement"),
    "AgreementReached.none": N_("The agreement is reached"),
    "AgreementRejected.none": N_("The proposed agreement was rejected: the negotiation goes on"),
    "NegotiationAbandoned.you": N_("You abandoned the negotiation"),
    "NegotiationAbandoned.coordinator": N_("The coordinator abandoned the negotiation"),
    "NegotiationAbandoned.coalition": N_("The coalition abandoned the negotiation"),
    "CommitmentsPlanned.you": N_("You proposed action plan {plan} for {count} commitments"),
    "CommitmentsPlanned.vendor": N_("The vendor proposed action plan {plan} for {count} commitments"),
    "PlanAccepted.you": N_("You accepted action plan {plan}: the implementation starts"),
    "PlanAccepted.coordinator": N_("The coordinator accepted action plan {plan}: the implementation starts"),
    "PlanAccepted.coalition": N_("The coalition accepted your action plan {plan}"),
    "PlanRejected.you": N_("You asked for another plan than plan {plan}"),
    "PlanRejected.coordinator": N_("The coordinator asked for another plan than plan {plan}"),
    "PlanRejected.coalition": N_("The coalition asked for another plan than your plan {plan}"),
    "CommitmentDelivered.you": N_("You delivered {item} (delivery {delivery})"),
    "CommitmentDelivered.vendor": N_("The vendor delivered {item} (delivery {delivery})"),
    "CommitmentChecked.you.met": N_("You checked delivery {delivery} of {item}: met"),
    "CommitmentChecked.you.not_met": N_("You checked delivery {delivery} of {item}: not met"),
    "CommitmentChecked.named.met": N_("{actor} checked delivery {delivery} of {item}: met"),
    "CommitmentChecked.named.not_met": N_("{actor} checked delivery {delivery} of {item}: not met"),
    "CommitmentVerdictGiven.you.met": N_("You found {item} met"),
    "CommitmentVerdictGiven.you.not_met": N_("You found {item} not met: the vendor delivers again"),
    "CommitmentVerdictGiven.coordinator.met": N_("The coordinator found {item} met"),
    "CommitmentVerdictGiven.coordinator.not_met": N_("The coordinator found {item} not met: the vendor delivers again"),
    "CommitmentVerdictGiven.coalition.met": N_("The coalition found {item} met"),
    "CommitmentVerdictGiven.coalition.not_met": N_("The coalition found {item} not met: deliver it again"),
    "CommitmentOverdue.none": N_("{item} is overdue: it was due {due}"),
    "RegressionReported.you": N_("You reported that {item} no longer holds"),
    "RegressionReported.named": N_("{actor} reported that {item} no longer holds"),
    "RegressionReported.member": N_("A member reported that {item} no longer holds"),
    "NegotiationReopened.you": N_("You reopened the negotiation on {items}"),
    "NegotiationReopened.coordinator": N_("The coordinator reopened the negotiation on {items}"),
    "NegotiationReopened.coalition": N_("The coalition reopened the negotiation on {items}"),
    "AgreementFulfilled.none": N_("Every commitment is met: the agreement is fulfilled"),
}


def timeline_words(t: Callable[..., str], item_words: ItemWords, items: Mapping[str, Any]) -> Callable[[Line], str]:
    """The line's sentence in the reader's language: an item by its (translated) title, a list
    of items joined; ``items`` are the negotiation's items by key."""

    def title(key: str) -> str:
        item = items.get(key)
        return item_words.title(item) if item is not None else key

    def words(line: Line) -> str:
        params = dict(line.params)
        if "item" in params:
            params["item"] = title(params["item"])
        if "items" in params:
            params["items"] = ", ".join(title(key) for key in params["items"])
        return t(SENTENCES[line.sentence], **params)

    return words
