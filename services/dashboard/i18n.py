"""The dashboard's words in English and Dutch. A missing Dutch text falls back to the English."""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("en", "nl")

NL: dict[str, str] = {
    "Sign in": "Inloggen",
    "Sign out": "Uitloggen",
    "API key": "API-sleutel",
    "Your personal token": "Uw persoonlijke token",
    "That personal token is not valid.": "Dat persoonlijke token is niet geldig.",
    "That is an organisation's integration key: sign in with your personal token.": (
        "Dat is de integratiesleutel van een organisatie: log in met uw persoonlijke token."
    ),
    "Sign in with single sign-on.": "Log in met single sign-on.",
    "Sign in with {label}": "Inloggen met {label}",
    "Not signed in": "Niet ingelogd",
    "Signed in": "Ingelogd",
    "On to your negotiations": "Door naar uw onderhandelingen",
    "Back to sign in": "Terug naar inloggen",
    "This hub has no single sign-on: sign in with your personal token.": (
        "Deze hub heeft geen single sign-on: log in met uw persoonlijke token."
    ),
    "{label} cannot be reached just now: try again in a few minutes.": (
        "{label} is nu niet bereikbaar: probeer het over een paar minuten opnieuw."
    ),
    "This sign-in was not started in this browser, or took longer than ten minutes: start again.": (
        "Deze inlogpoging is niet in deze browser begonnen, of duurde langer dan tien minuten: begin opnieuw."
    ),
    "{label} did not sign you in.": "{label} heeft u niet aangemeld.",
    "The answer of {label} did not pass the hub's checks, so nobody was signed in.": (
        "Het antwoord van {label} doorstond de controles van de hub niet, dus is niemand ingelogd."
    ),
    "People": "Mensen",
    "Your tokens": "Uw tokens",
    "Your organisation": "Uw organisatie",
    "People of {name}": "Mensen van {name}",
    "{name} is invited as {role}.": "{name} is uitgenodigd als {role}.",
    "Give them this personal token to sign in; it is shown only now:": (
        "Geef deze persoon dit persoonlijke token om in te loggen; het wordt alleen nu getoond:"
    ),
    "They sign in with {label} using {email}.": "Deze persoon logt in met {label} via {email}.",
    "Name": "Naam",
    "E-mail": "E-mail",
    "Role": "Rol",
    "Manage": "Beheren",
    "removed": "verwijderd",
    "signed in": "ingelogd",
    "active": "actief",
    "As a contributor you read the negotiation and draft and comment; "
    "an approver or owner acts for your organisation.": (
        "Als bijdrager leest u de onderhandeling en maakt u concepten en reacties; een goedkeurder of eigenaar "
        "handelt namens uw organisatie."
    ),
    "by": "door",
    "invited": "uitgenodigd",
    "Change role": "Rol wijzigen",
    "Remove": "Verwijderen",
    "Invite a person": "Iemand uitnodigen",
    "Invite": "Uitnodigen",
    "Invited {name}.": "{name} is uitgenodigd.",
    "Removed {name}.": "{name} is verwijderd.",
    "Choose a role.": "Kies een rol.",
    "An owner manages the organisation's people and integration key; an approver acts for the organisation; "
    "a contributor drafts and comments.": (
        "Een eigenaar beheert de mensen en de integratiesleutel van de organisatie; een goedkeurder handelt "
        "namens de organisatie; een bijdrager maakt concepten en reageert."
    ),
    "Your personal tokens": "Uw persoonlijke tokens",
    "A personal token lets a script act as you, with your role. Keep it secret.": (
        "Met een persoonlijk token handelt een script als u, met uw rol. Houd het geheim."
    ),
    "Your new token “{label}”; it is shown only now:": "Uw nieuwe token “{label}”; het wordt alleen nu getoond:",
    "Label": "Label",
    "Made": "Gemaakt",
    "Last used": "Laatst gebruikt",
    "revoked": "ingetrokken",
    "in use": "in gebruik",
    "Revoke": "Intrekken",
    "Revoked.": "Ingetrokken.",
    "Make a token": "Token maken",
    "e.g. nightly export": "bijv. nachtelijke export",
    "owner": "eigenaar",
    "approver": "goedkeurder",
    "contributor": "bijdrager",
    "Too many failed sign-ins: try again later.": "Te veel mislukte inlogpogingen: probeer het later opnieuw.",
    "The admin signs in with an API client, not here.": "De beheerder gebruikt een API-client, niet dit dashboard.",
    "Negotiations": "Onderhandelingen",
    "No negotiations yet.": "Nog geen onderhandelingen.",
    "Older negotiations": "Oudere onderhandelingen",
    "Title": "Titel",
    "Phase": "Fase",
    "Your role": "Uw rol",
    "Version": "Versie",
    "Round": "Ronde",
    "Updated": "Bijgewerkt",
    "coordinator": "coördinator",
    "member": "lid",
    "vendor": "leverancier",
    "collecting": "verzamelen",
    "negotiating": "onderhandelen",
    "endorsing": "instemmen",
    "agreed": "akkoord",
    "abandoned": "afgebroken",
    "Item": "Eis",
    "Target": "Doel",
    "Priority": "Prioriteit",
    "Support": "Steun",
    "Must": "Moet",
    "Vendor's offer": "Aanbod leverancier",
    "Status": "Status",
    "Settled": "Geregeld",
    "conflict": "conflict",
    "pending": "open",
    "accepted": "geaccepteerd",
    "countered": "tegenbod",
    "rejected": "afgewezen",
    "must": "moet",
    "should": "zou moeten",
    "could": "kan",
    "yes": "ja",
    "no": "nee",
    "Cohesion": "Cohesie",
    "Share of the coalition's weight that the current offers satisfy": (
        "Aandeel van het gewicht van de coalitie dat de huidige aanbiedingen tevredenstellen"
    ),
    "Ready to endorse": "Klaar om in te stemmen",
    "Not ready to endorse": "Nog niet klaar om in te stemmen",
    "Members": "Leden",
    "Weight": "Gewicht",
    "Satisfied": "Tevreden",
    "Open must items": "Open moet-eisen",
    "Your positions": "Uw standpunten",
    "State position": "Standpunt opslaan",
    "Withdraw": "Intrekken",
    "Value": "Waarde",
    "Accepted options": "Aanvaardbare opties",
    "Rationale (confidential)": "Toelichting (vertrouwelijk)",
    "No position": "Geen standpunt",
    "Publish the joint demand": "Gezamenlijke vraag publiceren",
    "Propose the agreement": "Akkoord voorstellen",
    "Abandon": "Afbreken",
    "Answer version": "Antwoord op versie",
    "Verdict": "Oordeel",
    "no answer": "geen antwoord",
    "accept": "accepteren",
    "counter": "tegenbod",
    "reject": "afwijzen",
    "Option": "Optie",
    "Comment": "Opmerking",
    "Send the answers": "Antwoorden versturen",
    "Clarifications": "Verduidelijkingen",
    "Ask a question": "Een vraag stellen",
    "Question": "Vraag",
    "Answer": "Antwoord",
    "Send": "Versturen",
    "No clarifications.": "Geen verduidelijkingen.",
    "Endorsement": "Instemming",
    "The coordinator proposes the agreement on the current offers.": (
        "De coördinator stelt het akkoord voor op de huidige aanbiedingen."
    ),
    "Accept the agreement": "Akkoord aanvaarden",
    "Reject the agreement": "Akkoord verwerpen",
    "Demand versions": "Versies van de vraag",
    "Nothing published yet.": "Nog niets gepubliceerd.",
    "changes": "wijzigingen",
    "new": "nieuw",
    "dropped": "vervallen",
    "target": "doel",
    "Timeline": "Tijdlijn",
    "Live": "Live",
    "Done.": "Gedaan.",
    "The joint demand (live)": "De gezamenlijke vraag (actueel)",
    "Published demand": "Gepubliceerde vraag",
    "Back to the negotiations": "Terug naar de onderhandelingen",
    "Language": "Taal",
    "Koopkracht dashboard": "Koopkracht-dashboard",
    "Updates wait while you edit a form: send it, or reload the page.": (
        "Updates wachten zolang u een formulier bewerkt: verstuur het, of laad de pagina opnieuw."
    ),
    # a member's drafts and their comments (SPEC section 10)
    "Draft": "Concept",
    "1 comment": "1 opmerking",
    "{n} comments": "{n} opmerkingen",
    "Drafted by {name}": "Opgesteld door {name}",
    "Adopted by {name}": "Vastgesteld door {name}",
    "No draft yet: anyone in your organisation may draft the position, an approver adopts it.": (
        "Nog geen concept: iedereen in uw organisatie mag het standpunt opstellen, een goedkeurder stelt het vast."
    ),
    "Draft the position": "Het standpunt opstellen",
    "Save the draft": "Concept opslaan",
    "Your comment": "Uw opmerking",
    "Add the comment": "Opmerking plaatsen",
    "Adopt: state this as our position": "Vaststellen: dit als ons standpunt innemen",
    # the "why?" of a target: the explanation of the joint demand (SPEC 4.1)
    "why?": "waarom?",
    "Included: members with a must position hold {must} of the weight.": (
        "Opgenomen: leden met een moet-standpunt hebben {must} van het gewicht."
    ),
    "Included: the supporters hold {support} of the weight, at least the inclusion share {inclusion}.": (
        "Opgenomen: de steunende leden hebben {support} van het gewicht, minstens de opnamedrempel {inclusion}."
    ),
    "Not included: no member says must, and the supporters hold {support} of the weight, "
    "less than the inclusion share {inclusion}.": (
        "Niet opgenomen: geen lid zegt moet, en de steunende leden hebben {support} van het gewicht, "
        "minder dan de opnamedrempel {inclusion}."
    ),
    "Priority {priority}: the highest any supporter gives": (
        "Prioriteit {priority}: de hoogste die een steunend lid geeft"
    ),
    "weight": "gewicht",
    "Priority score Σ w·rank / (3·W) = {score}.": "Prioriteitsscore Σ w·rang / (3·W) = {score}.",
    "No member has a position on this item: it has no target.": (
        "Geen lid heeft een standpunt over deze eis: er is geen doel."
    ),
    "Considered: the must and should positions.": "Meegeteld: de moet- en zou-moeten-standpunten.",
    "Considered: the must positions.": "Meegeteld: de moet-standpunten.",
    "Considered: all positions (none says must).": "Meegeteld: alle standpunten (geen zegt moet).",
    "Considered: all positions (none says must or should).": (
        "Meegeteld: alle standpunten (geen zegt moet of zou moeten)."
    ),
    "Their weight C = {c}.": "Hun gewicht C = {c}.",
    "Coverage q = {q}, so q·C = {qc}.": "Dekking q = {q}, dus q·C = {qc}.",
    "Member": "Lid",
    "a member": "een lid",
    "Positions": "Standpunten",
    "A position on this item means: we need this guarantee. The target is yes.": (
        "Een standpunt over deze eis betekent: wij hebben deze garantie nodig. Het doel is ja."
    ),
    "Target: the largest stated value at which the weight of the considered positions at or above it "
    "reaches q·C: {target}.": (
        "Doel: de grootste genoemde waarde waarbij het gewicht van de meegetelde standpunten op of boven die "
        "waarde q·C bereikt: {target}."
    ),
    "Target: the smallest stated value at which the weight of the considered positions at or below it "
    "reaches q·C: {target}.": (
        "Doel: de kleinste genoemde waarde waarbij het gewicht van de meegetelde standpunten op of onder die "
        "waarde q·C bereikt: {target}."
    ),
    "Every considered position accepts {options}: that is the target.": (
        "Elk meegeteld standpunt aanvaardt {options}: dat is het doel."
    ),
    "No option is accepted by every considered position (a conflict): the target is the option of the "
    "largest weight: {options}.": (
        "Geen optie wordt door elk meegeteld standpunt aanvaard (een conflict): het doel is de optie met het "
        "grootste gewicht: {options}."
    ),
    "Cumulative weight of the considered positions per stated value": (
        "Opgeteld gewicht van de meegetelde standpunten per genoemde waarde"
    ),
    "at or above": "op of boven",
    "at or below": "op of onder",
    "Each column: the weight of the considered positions {at} the value. Line: q·C = {qc}.": (
        "Elke kolom: het gewicht van de meegetelde standpunten {at} de waarde. Lijn: q·C = {qc}."
    ),
    # after the agreement (SPEC 9): phases, the commitments board and its timeline
    "implementing": "in uitvoering",
    "fulfilled": "nagekomen",
    "Commitments": "Toezeggingen",
    "Commitment": "Toezegging",
    "open": "open",
    "delivered": "opgeleverd",
    "met": "voldaan",
    "not met": "niet voldaan",
    "overdue": "te laat",
    "proposed": "voorgesteld",
    "checked": "gecontroleerd",
    "today": "vandaag",
    "due": "uiterlijk",
    "Due": "Uiterlijk op",
    "no due date yet": "nog geen datum",
    "overdue since": "te laat sinds",
    "Note": "Toelichting",
    "Terms": "Afspraak",
    "Evidence": "Bewijs",
    "Delivery {n}": "Oplevering {n}",
    "not delivered yet": "nog niet opgeleverd",
    "Coordinator's verdict": "Oordeel van de coördinator",
    "none yet": "nog geen",
    "Due dates of the commitments": "Uiterste data van de toezeggingen",
    "{n} commitments: {summary}. Today is {today}.": "{n} toezeggingen: {summary}. Vandaag is het {today}.",
    "Every item of the agreement is a commitment. The vendor plans a due date for each; "
    "the coordinator accepts the plan.": (
        "Elke eis van het akkoord is een toezegging. De leverancier plant voor elke een uiterste datum; "
        "de coördinator aanvaardt het plan."
    ),
    "The vendor proposed an action plan: the coordinator accepts it or asks for another.": (
        "De leverancier heeft een plan van aanpak voorgesteld: de coördinator aanvaardt het of vraagt om een ander."
    ),
    "The vendor delivers each commitment with evidence; the members check it in their own environment; "
    "the coordinator gives the verdict.": (
        "De leverancier levert elke toezegging op met bewijs; de leden controleren die in hun eigen omgeving; "
        "de coördinator geeft het oordeel."
    ),
    "Every commitment is met: the agreement is fulfilled.": (
        "Aan elke toezegging is voldaan: de afspraken zijn nagekomen."
    ),
    "Negotiated again": "Opnieuw in onderhandeling",
    "The coordinator asked for another plan:": "De coördinator vroeg om een ander plan:",
    "Plan {n} awaits the coordinator's decision": "Plan {n} wacht op het besluit van de coördinator",
    "Accept the plan": "Plan aanvaarden",
    "Why another plan?": "Waarom een ander plan?",
    "Ask for another plan": "Om een ander plan vragen",
    "Your action plan": "Uw plan van aanpak",
    "A due date in the future for every commitment not yet planned; a note if it helps.": (
        "Een uiterste datum in de toekomst voor elke toezegging die nog niet gepland is; een toelichting als dat helpt."
    ),
    "Propose the plan": "Plan voorstellen",
    "Members' checks of delivery {n}": "Controles door de leden van oplevering {n}",
    "of the coalition's weight": "van het gewicht van de coalitie",
    "Check": "Controle",
    "When": "Wanneer",
    "No member has checked this delivery yet.": "Nog geen lid heeft deze oplevering gecontroleerd.",
    "Your check": "Uw controle",
    "you have not checked this delivery": "u hebt deze oplevering niet gecontroleerd",
    "Reported regressions": "Gemelde terugval",
    "Your regression reports": "Uw meldingen van terugval",
    "Evidence (a text or a URL)": "Bewijs (een tekst of een URL)",
    "Report delivered": "Opgeleverd melden",
    "Check it in your own environment": "Controleer het in uw eigen omgeving",
    "replaces your check": "vervangt uw controle",
    "Send the check": "Controle versturen",
    "It no longer holds because": "Het klopt niet meer omdat",
    "Report a regression": "Terugval melden",
    "Your verdict for the coalition": "Uw oordeel namens de coalitie",
    "After the regression reports: not met after all?": "Na de meldingen van terugval: toch niet voldaan?",
    "Give the verdict": "Oordeel geven",
    "Reopen the negotiation on chosen commitments": "De onderhandeling heropenen over gekozen toezeggingen",
    "Negotiate these commitments again": "Over deze toezeggingen opnieuw onderhandelen",
    "Reason": "Reden",
    "Reopen the negotiation": "De onderhandeling heropenen",
    # the board's timeline: what each event says
    "Negotiation opened": "Onderhandeling geopend",
    "Member invited": "Lid uitgenodigd",
    "Policy changed": "Beleid gewijzigd",
    "Position stated": "Standpunt ingenomen",
    "Position withdrawn": "Standpunt ingetrokken",
    "Demand published": "Vraag gepubliceerd",
    "Vendor responded": "Leverancier heeft geantwoord",
    "Clarification requested": "Verduidelijking gevraagd",
    "Clarification answered": "Verduidelijking gegeven",
    "Agreement proposed": "Akkoord voorgesteld",
    "Endorsement given": "Instemming gegeven",
    "Agreement reached": "Akkoord bereikt",
    "Agreement rejected": "Akkoord verworpen",
    "Negotiation abandoned": "Onderhandeling afgebroken",
    "Action plan proposed": "Plan van aanpak voorgesteld",
    "Action plan accepted": "Plan van aanpak aanvaard",
    "Action plan rejected": "Plan van aanpak afgewezen",
    "Commitment delivered": "Toezegging opgeleverd",
    "Delivery checked": "Oplevering gecontroleerd",
    "Verdict given": "Oordeel gegeven",
    "Commitment overdue": "Toezegging te laat",
    "Regression reported": "Terugval gemeld",
    "Negotiation reopened": "Onderhandeling heropend",
    "Agreement fulfilled": "Afspraken nagekomen",
    # the what-if and the suggestions (the coordinator's insight)
    "What if?": "Wat als?",
    "Try another policy, or leave items out or in: the answer shows the difference from today's joint demand. "
    "Nothing is published or changed.": (
        "Probeer een ander beleid, of laat eisen weg of neem ze op: het antwoord toont het verschil met de "
        "gezamenlijke vraag van vandaag. Er wordt niets gepubliceerd of gewijzigd."
    ),
    "Inclusion share": "Opnamedrempel",
    "Coverage": "Dekking",
    "Items": "Eisen",
    "leave out": "weglaten",
    "include": "opnemen",
    "Show the difference": "Toon het verschil",
    "1 member": "1 lid",
    "{n} members": "{n} leden",
    "{share} of the weight": "{share} van het gewicht",
    "Served by the demand": "Bediend door de vraag",
    "Change": "Verandering",
    "enters": "komt erbij",
    "leaves": "valt af",
    "retargeted": "ander doel",
    "The joint demand would be as it is today.": "De gezamenlijke vraag zou blijven zoals hij vandaag is.",
    "Would become satisfied": "Zou tevreden worden",
    "Would no longer be satisfied": "Zou niet meer tevreden zijn",
    "Would be served, and are not today": "Zou bediend worden, en is dat vandaag niet",
    "Would be left behind": "Zou achterblijven",
    "Not served by this demand": "Niet bediend door deze vraag",
    "Suggestions": "Suggesties",
    "No suggestion: no conflict, and no single concession would raise cohesion.": (
        "Geen suggestie: er is geen conflict, en geen enkele concessie zou de cohesie verhogen."
    ),
    "Ending a conflict": "Een conflict beëindigen",
    "if {members} also accepted {option}, the conflict would end": (
        "als {members} ook {option} zou accepteren, zou het conflict voorbij zijn"
    ),
    "cohesion": "cohesie",
    "{n} members would have to accept {option} to end the conflict": (
        "{n} leden zouden {option} moeten accepteren om het conflict te beëindigen"
    ),
    "Concessions of members": "Concessies van leden",
    "{name} would be satisfied if it would:": "{name} zou tevreden zijn als het:",
    "make {item} a should": "{item} van moet naar zou moeten bracht",
    "accept {value} on {item}": "{value} accepteerde op {item}",
    "For the negotiation team: the vendor's best concession per item": (
        "Voor het onderhandelingsteam: de beste concessie van de leverancier per eis"
    ),
    "an accept on {item}": "aanvaarding van {item}",
    "a counter of {value} on {item}": "een tegenbod van {value} op {item}",
    "{n} more members satisfied": "{n} leden meer tevreden",
    "{n} no longer satisfied": "{n} niet meer tevreden",
    "not asked": "niet gevraagd",
    "try it": "probeer het",
    "With the suggestion's concessions:": "Met de concessies van de suggestie:",
    "without them": "zonder",
    "plan {n}": "plan {n}",
    "{n} commitments": "{n} toezeggingen",
    "delivery {n}": "oplevering {n}",
}


def translator(language: str) -> Callable[[str], str]:
    if language == "nl":
        return lambda text: NL.get(text, text)
    return lambda text: text


def choose(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate
    return "nl" if (accept_language or "").lower().startswith("nl") else "en"
