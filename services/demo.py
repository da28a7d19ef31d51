"""``koopkracht demo``: a whole negotiation, told as it happens, on the running hub.

A cooperative (SURF), twelve member institutions with realistic weights (their users, in
thousands) and a vendor negotiate privacy and exit terms from the catalogue: the members state
positions (two of them conflict on data location), the cooperative publishes, the vendor answers
in three rounds with counters and a clarification, two members give way, and the coalition agrees
by endorsement. Then the agreement is implemented (SPEC section 9): the vendor plans its
commitments, SURF accepts the plan, the vendor delivers two of them, members check them, SURF
finds one met and one not met, one commitment goes overdue on the scheduler's tick, and SURF
reopens the negotiation on it. The OCDS release, with a milestone per commitment, is written to
the data folder.

Every organisation has an owner (SPEC section 10). At TU Delft, giving way is a decision of its
people: a contributor drafts "NL only", the privacy officer comments, and the approver redrafts it
to "NL or EU" and adopts it, which states the position (the event records the approver, seen only
inside TU Delft). The other organisations act with their integration keys, as systems would.

Everything goes through the HTTP API, as any client would. Organisations are made once and kept
(with their keys and their people's personal tokens) in ``<data dir>/demo/organisations.json``,
readable only by its owner, so running the demo again reuses them and opens a new negotiation
beside the old ones.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

COORDINATOR = ("SURF", "coordinator")
VENDOR = ("Nimbus Cloud Office", "vendor")
MEMBERS: list[tuple[str, str, int]] = [
    # (short name, name, weight: users in thousands)
    ("uva", "Universiteit van Amsterdam", 42),
    ("uu", "Universiteit Utrecht", 38),
    ("tud", "TU Delft", 28),
    ("rug", "Rijksuniversiteit Groningen", 36),
    ("hva", "Hogeschool van Amsterdam", 46),
    ("hu", "Hogeschool Utrecht", 38),
    ("fontys", "Fontys Hogescholen", 44),
    ("amc", "Amsterdam UMC", 19),
    ("umcu", "UMC Utrecht", 12),
    ("emc", "Erasmus MC", 14),
    ("rocva", "ROC van Amsterdam", 30),
    ("albeda", "Albeda", 20),
]
DRAFTING = "tud"
"""The member whose people draft, comment and adopt its change of position on data location."""
PEOPLE: dict[str, tuple[str, str]] = {
    # what they do in the story: (name, role)
    "architect": ("Joris Bakker", "contributor"),
    "privacy officer": ("Femke Jansen", "contributor"),
    "CIO": ("Pieter van Dam", "approver"),
}
ITEMS = [
    "data-location",
    "no-ai-training",
    "telemetry-minimum",
    "diagnostic-data-retention",
    "breach-notification",
    "exit-return-deletion",
    "exit-transition-period",
    "max-annual-increase",
]


def positions() -> dict[str, dict[str, dict[str, Any]]]:
    """Who wants what. The medical centres insist on NL; two universities on the EU: a conflict."""
    wanted: dict[str, dict[str, dict[str, Any]]] = {}
    for short, _, _ in MEMBERS:
        medical = short in ("amc", "umcu", "emc")
        mine: dict[str, dict[str, Any]] = {
            "no-ai-training": {"priority": "must"},
            "diagnostic-data-retention": {"priority": "must" if medical else "should", "value": 14 if medical else 30},
            "breach-notification": {"priority": "must", "value": 24 if medical else 48},
            "exit-return-deletion": {"priority": "should", "value": 30},
            "exit-transition-period": {"priority": "should", "value": 90 if short in ("uva", "uu", "rug") else 60},
            "max-annual-increase": {"priority": "must" if short.startswith("h") else "could", "value": 3},
        }
        if medical:
            mine["data-location"] = {"priority": "must", "accepted": ["NL"], "rationale": "Patient data stays in NL"}
        elif short in ("tud", "rug"):
            mine["data-location"] = {"priority": "must", "accepted": ["EU", "EEA"]}
        else:
            mine["data-location"] = {"priority": "should", "accepted": ["NL", "EU"]}
        if short not in ("rocva", "albeda"):
            mine["telemetry-minimum"] = {"priority": "must" if short in ("uva", "tud") else "should"}
        wanted[short] = mine
    return wanted


ROUNDS: list[list[dict[str, Any]]] = [
    [
        {"key": "data-location", "verdict": "counter", "option": "EU", "comment": "EU data boundary"},
        {"key": "no-ai-training", "verdict": "accept"},
        {"key": "telemetry-minimum", "verdict": "reject", "comment": "Required diagnostic data stays on"},
        {"key": "diagnostic-data-retention", "verdict": "counter", "value": 90},
        {"key": "breach-notification", "verdict": "counter", "value": 72},
        {"key": "exit-return-deletion", "verdict": "counter", "value": 90},
        {"key": "exit-transition-period", "verdict": "counter", "value": 30},
        {"key": "max-annual-increase", "verdict": "counter", "value": 5},
    ],
    [
        {"key": "data-location", "verdict": "counter", "option": "NL", "comment": "Dutch region available"},
        {"key": "telemetry-minimum", "verdict": "accept", "comment": "Off-switch for required diagnostics"},
        {"key": "diagnostic-data-retention", "verdict": "counter", "value": 30},
        {"key": "breach-notification", "verdict": "counter", "value": 36},
        {"key": "exit-return-deletion", "verdict": "accept"},
        {"key": "exit-transition-period", "verdict": "counter", "value": 60},
        {"key": "max-annual-increase", "verdict": "counter", "value": 4},
    ],
    [
        {"key": "diagnostic-data-retention", "verdict": "counter", "value": 14},
        {"key": "breach-notification", "verdict": "accept"},
        {"key": "exit-transition-period", "verdict": "accept"},
        {"key": "max-annual-increase", "verdict": "counter", "value": 3},
    ],
]


OVERDUE = "breach-notification"
"""The commitment the story lets slip: due within seconds, it goes overdue on the scheduler's tick."""
PLAN: dict[str, timedelta] = {
    OVERDUE: timedelta(seconds=5),
    "no-ai-training": timedelta(days=30),
    "diagnostic-data-retention": timedelta(days=45),
    "telemetry-minimum": timedelta(days=60),
    "data-location": timedelta(days=120),
    "exit-return-deletion": timedelta(days=180),
    "exit-transition-period": timedelta(days=180),
    "max-annual-increase": timedelta(days=365),
}
NOTES = {
    "data-location": "Migration of existing tenants to the Dutch region",
    "no-ai-training": "Contractual clause and a tenant switch, on by default",
}
DELIVERIES = {
    "no-ai-training": "https://nimbus.example/trust/ai-training-off (tenant switch, default on)",
    "diagnostic-data-retention": "Diagnostic data retention set to 14 days for every education tenant",
}
CHECKS: dict[str, tuple[str, list[str], str]] = {
    # key: (verdict, the members who check, their comment)
    "no-ai-training": ("met", ["uva", "uu", "hva", "fontys", "tud"], "The switch is on in our tenant"),
    "diagnostic-data-retention": ("not_met", ["amc", "umcu", "emc", "uva"], "Security logs are still kept 30 days"),
}
OVERDUE_WAIT_S = 60.0
TICK_INTERVAL_S = 2.0
"""The demo's scheduler ticks this often (time runs fast here), unless KOOPKRACHT_TICK_INTERVAL_S
says otherwise: with the default minute, the story would wait up to two for its overdue item."""


class DemoError(RuntimeError):
    pass


@dataclass
class Organisation:
    id: str
    name: str
    role: str
    api_key: str
    """The organisation's integration key."""
    owner_token: str | None = None
    """The personal token of its first owner: how a person signs in to the dashboard. None when
    the hub has single sign-on (then people sign in with it)."""
    people: dict[str, str] = field(default_factory=dict)
    """The personal tokens of the people the story needs, by what they do in it (``PEOPLE``)."""


@dataclass
class DemoResult:
    negotiation_id: str
    organisations: dict[str, Organisation]
    state: dict[str, Any]
    release_path: Path
    commitments: dict[str, Any]


Step = Callable[[str], None]


class Demo:
    def __init__(self, base_url: str, admin_token: str, data_dir: Path, step: Step = lambda _: None) -> None:
        self.base_url = base_url
        self.admin_token = admin_token
        self.folder = data_dir / "demo"
        self.step = step
        self._clients: dict[str, httpx.Client] = {}

    def client(self, key: str) -> httpx.Client:
        if key not in self._clients:
            self._clients[key] = httpx.Client(
                base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
            )
        return self._clients[key]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    def call(self, key: str, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        response = self.client(key).request(method, path, json=body)
        if response.status_code != expect:
            raise DemoError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    # -- organisations ---------------------------------------------------------------------------
    def organisations(self) -> dict[str, Organisation]:
        """The demo's organisations with their owners and people: those kept from an earlier run if
        their keys and tokens still work."""
        self.folder.mkdir(parents=True, exist_ok=True)
        kept = self.folder / "organisations.json"
        if kept.exists():
            entries = json.loads(kept.read_text())
            # Kept by a demo from before organisations had people: made anew, with owners.
            known = {k: Organisation(**v) for k, v in entries.items() if "owner_token" in v}
            if len(known) < len(entries):
                known = {}
            if known and all(self._still_works(o) for o in known.values()):
                self.step(f"reusing the {len(known)} organisations of an earlier run")
                return known
        made: dict[str, Organisation] = {}
        wanted = [("surf", *COORDINATOR), ("vendor", *VENDOR)] + [(s, n, "member") for s, n, _ in MEMBERS]
        for short, name, role in wanted:
            body = self.call(
                self.admin_token,
                "POST",
                "/v1/organisations",
                {"name": name, "role": role, "owner": {"name": f"Owner of {name}"}},
                201,
            )
            made[short] = Organisation(body["id"], name, role, body["api_key"], body["owner"]["personal_token"])
            self.step(f"organisation {name} ({role}), with its owner")
        drafting = made[DRAFTING]
        if drafting.owner_token is not None:
            for does, (name, role) in PEOPLE.items():
                person = self.call(
                    drafting.owner_token, "POST", "/v1/organisations/me/people", {"name": name, "role": role}, 201
                )
                drafting.people[does] = person["personal_token"]
            self.step(f"{drafting.name}'s owner invited {', '.join(f'{n} ({r})' for n, r in PEOPLE.values())}")
        kept.touch(mode=0o600)
        kept.write_text(json.dumps({k: vars(v) for k, v in made.items()}, indent=2))
        os.chmod(kept, 0o600)
        return made

    def _still_works(self, organisation: Organisation) -> bool:
        """Whether a kept organisation's integration key and personal tokens all still let it in."""
        credentials = [organisation.api_key, *filter(None, [organisation.owner_token]), *organisation.people.values()]
        return all(self.client(c).get("/v1/organisations/me").status_code == 200 for c in credentials)

    # -- the story -------------------------------------------------------------------------------
    def run(self) -> DemoResult:
        orgs = self.organisations()
        surf, vendor = orgs["surf"].api_key, orgs["vendor"].api_key
        opened = self.call(
            surf,
            "POST",
            "/v1/negotiations",
            {
                "title": "Cloud office suite 2027-2030: privacy and exit terms",
                "vendor_id": orgs["vendor"].id,
                "items": [{"key": key} for key in ITEMS],
                "policy": {"coverage": 1, "inclusion_share": 0.5, "endorsement_share": "2/3"},
            },
            201,
        )
        nid = opened["id"]
        n = f"/v1/negotiations/{nid}"
        self.step(f"SURF opened the negotiation {nid}")
        for short, name, weight in MEMBERS:
            self.call(surf, "POST", f"{n}/members", {"organisation_id": orgs[short].id, "weight": weight}, 201)
            self.step(f"invited {name} (weight {weight})")
        for short, wanted in positions().items():
            for key, position in wanted.items():
                self.call(orgs[short].api_key, "PUT", f"{n}/positions/{key}", position)
            self.step(f"{orgs[short].name} stated {len(wanted)} positions")
        demand = self.call(surf, "GET", f"{n}/demand")
        conflicts = [i["key"] for i in demand["items"] if i["conflict"]]
        self.step(
            f"joint demand: {sum(i['included'] for i in demand['items'])} items, conflicts: {conflicts or 'none'}"
        )
        self.call(surf, "POST", f"{n}/demand/publish", expect=201)
        self.step("SURF published demand version 1")

        self.respond(vendor, n, 1, ROUNDS[0])
        asked = self.call(
            vendor,
            "POST",
            f"{n}/clarifications",
            {"item_key": "diagnostic-data-retention", "question": "Does the 14-day limit include security logs?"},
            201,
        )
        self.call(
            surf,
            "POST",
            f"{n}/clarifications/{asked['clarification_id']}/answer",
            {"answer": "Security logs may be kept 90 days, pseudonymised; everything else 14 days."},
        )
        self.step("the vendor asked about diagnostic-data-retention; SURF answered")
        # The two universities give way on data location: NL is fine for them too.
        give_way = {"priority": "must", "accepted": ["NL", "EU"]}
        self.call(orgs["rug"].api_key, "PUT", f"{n}/positions/data-location", give_way)
        self.give_way_inside(orgs[DRAFTING], n, give_way)
        self.step("TU Delft and Groningen accept NL as well: the data-location conflict is gone")
        self.call(surf, "POST", f"{n}/demand/publish", expect=201)
        self.step("SURF published demand version 2")
        self.respond(vendor, n, 2, ROUNDS[1])
        self.respond(vendor, n, 2, ROUNDS[2])
        state = self.call(surf, "GET", f"{n}/state")
        self.step(f"cohesion {state['cohesion']:.0%}, ready to endorse: {state['ready_to_endorse']}")
        self.call(surf, "POST", f"{n}/agreement/propose")
        self.step("SURF proposed the agreement")
        for short, name, _ in MEMBERS:
            answer = self.call(orgs[short].api_key, "POST", f"{n}/agreement/endorsements", {"decision": "accept"}, 201)
            self.step(f"{name} endorsed")
            if answer["outcome"] is not None:
                self.step(f"agreement {answer['outcome']}")
                break
        self.implement(orgs, n)
        release = self.call(surf, "GET", f"{n}/export/ocds")
        path = self.folder / f"ocds-release-{nid}.json"
        path.write_text(json.dumps(release, indent=2, ensure_ascii=False))
        self.step(f"wrote the OCDS release, with a milestone per commitment, to {path}")
        self.call(surf, "POST", f"{n}/reopen", {"items": [OVERDUE], "reason": "The breach process was not delivered"})
        self.step(f"SURF reopened the negotiation on {OVERDUE}: the next demand version holds only that item")
        state = self.call(surf, "GET", f"{n}/state")
        return DemoResult(nid, orgs, state, path, self.call(surf, "GET", f"{n}/commitments"))

    def implement(self, orgs: dict[str, Organisation], n: str) -> None:
        """After the agreement (SPEC section 9): the vendor's action plan, two deliveries, the
        members' checks, one met and one not, and one commitment overdue on the scheduler's tick."""
        surf, vendor = orgs["surf"].api_key, orgs["vendor"].api_key
        commitments = self.call(surf, "GET", f"{n}/commitments")["commitments"]
        self.step(f"the agreement holds {len(commitments)} commitments: {', '.join(c['key'] for c in commitments)}")
        now = datetime.now(UTC)
        plan = [
            {
                "key": c["key"],
                "due": (now + PLAN.get(c["key"], timedelta(days=90))).isoformat(),
                **({"note": NOTES[c["key"]]} if c["key"] in NOTES else {}),
            }
            for c in commitments
        ]
        self.call(vendor, "POST", f"{n}/commitments/plan", {"items": plan}, 201)
        self.step(f"the vendor planned them; {OVERDUE} is due in {PLAN[OVERDUE].seconds} seconds (time runs fast here)")
        self.call(surf, "POST", f"{n}/commitments/plan/accept")
        self.step("SURF accepted the plan: the agreement is in implementation")
        for key, evidence in DELIVERIES.items():
            self.call(vendor, "POST", f"{n}/commitments/{key}/delivered", {"evidence": evidence}, 201)
            self.step(f"the vendor delivered {key}: {evidence}")
        for key, (verdict, checkers, comment) in CHECKS.items():
            for short in checkers:
                body = {"verdict": verdict, "comment": comment}
                self.call(orgs[short].api_key, "POST", f"{n}/commitments/{key}/checks", body, 201)
            tally = next(c for c in self.call(surf, "GET", f"{n}/commitments")["commitments"] if c["key"] == key)
            shares = tally["tally"]
            self.step(
                f"{len(checkers)} members checked {key}: {shares['met_share']:.0%} of the coalition found it met, "
                f"{shares['not_met_share']:.0%} not met"
            )
            self.call(surf, "POST", f"{n}/commitments/{key}/verdict", {"verdict": verdict, "comment": comment})
            self.step(f"SURF found {key} {verdict.replace('_', ' ')}")
        deadline = time.monotonic() + OVERDUE_WAIT_S
        while True:
            found = next(c for c in self.call(surf, "GET", f"{n}/commitments")["commitments"] if c["key"] == OVERDUE)
            if found["status"] == "overdue":
                break
            if time.monotonic() > deadline:
                raise DemoError(
                    f"{OVERDUE} did not become overdue within {OVERDUE_WAIT_S} s: is the scheduler running?"
                )
            time.sleep(0.5)  # the scheduler ticks on its own interval: the story waits for it
        self.step(f"the scheduler's tick found {OVERDUE} overdue: it was due {found['due']}")

    def give_way_inside(self, member: Organisation, n: str, position: dict[str, Any]) -> None:
        """How a member's people align before it states a position (SPEC section 10): a draft, a
        comment, an adoption. Without personal tokens (a hub with single sign-on, where people
        sign in themselves), the integration key states the position."""
        people = member.people
        if set(people) != set(PEOPLE):
            self.call(member.api_key, "PUT", f"{n}/positions/data-location", position)
            return
        draft = f"{n}/drafts/data-location"
        architect, officer, cio = (PEOPLE[k][0] for k in ("architect", "privacy officer", "CIO"))
        self.call(people["architect"], "PUT", draft, {"priority": "must", "accepted": ["NL"]})
        self.step(f'{member.name}: {architect} drafts data location "NL only", as the medical centres want')
        comment = (
            "NL only would turn down the vendor's EU data boundary for nothing: NL or EU keeps our research "
            "data under the GDPR and joins the medical centres."
        )
        self.call(people["privacy officer"], "POST", f"{draft}/comments", {"text": comment}, 201)
        self.step(f"{member.name}: {officer}, the privacy officer, comments: NL or EU is enough")
        self.call(people["CIO"], "PUT", draft, position)
        adopted = self.call(people["CIO"], "POST", f"{draft}/adopt")
        accepted = " or ".join(adopted["accepted"])
        self.step(f"{member.name}: {cio} (approver) redrafts it to {accepted} and adopts it: the position is stated")

    def respond(self, vendor: str, n: str, version: int, answers: list[dict[str, Any]]) -> None:
        answered = self.call(vendor, "POST", f"{n}/responses", {"demand_version": version, "items": answers}, 201)
        self.step(f"the vendor answered version {version} in round {answered['round']} ({len(answers)} items)")
