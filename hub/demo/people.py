"""Synthetic people and source records for the demo panel, the Northtown situation table.

Everything here is invented. Names are placeholders, phone numbers are in Ofcom's ranges reserved
for drama (01632 960xxx, 07700 900xxx), postcodes do not exist. Each agency knows a person by its
own local id; not everyone is known to every agency.

The records are rows as each source system holds them, keyed by table (SQL sources) or by
collection (REST sources). Every row carries the source's local id column, and most carry columns
no category maps (internal notes, relatives' and associates' names), so that tests can show those
never leave the source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

POLICE = "northtown-police"
CHILDRENS_SERVICES = "northtown-childrens-services"
ACADEMY = "northtown-academy"
YOUTH_WORK = "brightpath-youth"


@dataclass(frozen=True)
class DemoAgency:
    """An agency on the demo panel; ``kind`` uses the hub's agency kinds."""

    slug: str
    name: str
    kind: str


@dataclass(frozen=True)
class DemoPerson:
    """A synthetic person; ``local_ids`` maps agency slug to that agency's own id."""

    given_name: str
    family_name: str
    date_of_birth: str
    local_ids: dict[str, str]


DEMO_AGENCIES: tuple[DemoAgency, ...] = (
    DemoAgency(POLICE, "Northtown Police", "police"),
    DemoAgency(CHILDRENS_SERVICES, "Northtown Children's Services", "social_services"),
    DemoAgency(ACADEMY, "Northtown Academy", "school"),
    DemoAgency(YOUTH_WORK, "Brightpath Youth", "cso"),
)

ALEX = DemoPerson(
    "Alex",
    "Example",
    "2011-03-14",
    {POLICE: "NTP-1042", CHILDRENS_SERVICES: "CS-88-301", ACADEMY: "NA-2231", YOUTH_WORK: "BP-017"},
)
SAM = DemoPerson("Sam", "Sample", "1999-07-02", {POLICE: "NTP-1077", YOUTH_WORK: "BP-023"})
JO = DemoPerson(
    "Jo", "Placeholder", "2005-11-20", {POLICE: "NTP-1103", CHILDRENS_SERVICES: "CS-88-517"}
)
ROBIN = DemoPerson("Robin", "Testcase", "2012-09-30", {ACADEMY: "NA-2307", YOUTH_WORK: "BP-031"})

# Alex (a minor known to all four agencies) is the demo's referral; the others give the panel
# people who must not turn up in Alex's case.
DEMO_PEOPLE: tuple[DemoPerson, ...] = (ALEX, SAM, JO, ROBIN)

# The column (or JSON key) in which each source keeps its own local id.
LOCAL_ID_COLUMNS: dict[str, str] = {
    POLICE: "person_id",
    CHILDRENS_SERVICES: "case_ref",
    ACADEMY: "pupil_id",
    YOUTH_WORK: "participant_id",
}

Rows = tuple[dict[str, Any], ...]


def _identity_rows(agency: str, extra: dict[str, dict[str, Any]]) -> Rows:
    """Identity rows for everyone ``agency`` knows, plus per-person unmapped columns."""
    id_column = LOCAL_ID_COLUMNS[agency]
    return tuple(
        {
            id_column: person.local_ids[agency],
            "given_name": person.given_name,
            "family_name": person.family_name,
            "date_of_birth": person.date_of_birth,
            **extra.get(person.local_ids[agency], {}),
        }
        for person in DEMO_PEOPLE
        if agency in person.local_ids
    )


POLICE_RECORDS: dict[str, Rows] = {
    "people": _identity_rows(
        POLICE,
        {
            "NTP-1042": {"intelligence_note": "Synthetic: seen with older associates at night."},
            "NTP-1077": {"intelligence_note": "Synthetic: no current concerns."},
            "NTP-1103": {"intelligence_note": "Synthetic: welfare marker on address."},
        },
    ),
    "contacts": (
        {
            "contact_id": 501,
            "person_id": "NTP-1042",
            "occurred_on": "2025-09-12",
            "kind": "missing_person_report",
            "outcome": "found_safe",
            "officer_name": "PC Morgan Fictional",
            "internal_note": "Synthetic: found at the bus station after midnight.",
        },
        {
            "contact_id": 537,
            "person_id": "NTP-1042",
            "occurred_on": "2025-10-03",
            "kind": "anti_social_behaviour",
            "outcome": "words_of_advice",
            "officer_name": "PC Morgan Fictional",
            "internal_note": "Synthetic: group of five, two adults.",
        },
        {
            "contact_id": 488,
            "person_id": "NTP-1077",
            "occurred_on": "2025-08-21",
            "kind": "victim_of_assault",
            "outcome": "investigation_closed",
            "officer_name": "DC Lee Imaginary",
            "internal_note": "Synthetic: declined to give a statement.",
        },
        {
            "contact_id": 462,
            "person_id": "NTP-1103",
            "occurred_on": "2025-06-30",
            "kind": "welfare_check",
            "outcome": "no_further_action",
            "officer_name": "PC Kim Madeup",
            "internal_note": "Synthetic: neighbour called about noise.",
        },
    ),
    "indicators": (
        {
            "person_id": "NTP-1042",
            "recorded_on": "2025-10-03",
            "indicator": "repeat_missing_episodes",
            "associate_name": "Chris Imaginary",
        },
        {
            "person_id": "NTP-1042",
            "recorded_on": "2025-10-03",
            "indicator": "association_with_older_peers",
            "associate_name": "Dana Notreal",
        },
        {
            "person_id": "NTP-1077",
            "recorded_on": "2025-08-21",
            "indicator": "substance_misuse_concern",
            "associate_name": None,
        },
    ),
}

CHILDRENS_SERVICES_RECORDS: dict[str, Rows] = {
    "identity": _identity_rows(
        CHILDRENS_SERVICES,
        {
            "CS-88-301": {"legal_status": "s17_assessment_open"},
            "CS-88-517": {"legal_status": "former_relevant_child"},
        },
    ),
    "contact": (
        {
            "case_ref": "CS-88-301",
            "address": "12 Example Row, Northtown NT9 9ZZ",
            "phone": "01632 960 123",
            "household_members": "Mother: Casey Example; sister: Riley Example (8)",
        },
        {
            "case_ref": "CS-88-517",
            "address": "Flat 4, 9 Sample Court, Northtown NT9 9ZY",
            "phone": "07700 900 456",
            "household_members": "Lives alone",
        },
    ),
    "social-care": (
        {
            "case_ref": "CS-88-301",
            "opened_on": "2024-11-04",
            "plan_type": "child_in_need",
            "status": "open",
            "allocated_worker": "Pat Fictitious",
            "case_note": "Synthetic: mother reports Alex staying out overnight.",
        },
        {
            "case_ref": "CS-88-517",
            "opened_on": "2021-02-15",
            "plan_type": "pathway_plan",
            "status": "open",
            "allocated_worker": "Jamie Invented",
            "case_note": "Synthetic: tenancy support in place.",
        },
    ),
    "protective-factors": (
        {
            "case_ref": "CS-88-301",
            "factor": "engaged_grandparent",
            "noted_on": "2025-01-20",
        },
        {
            "case_ref": "CS-88-517",
            "factor": "stable_housing",
            "noted_on": "2024-06-02",
        },
    ),
}

ACADEMY_RECORDS: dict[str, Rows] = {
    "pupils": _identity_rows(
        ACADEMY,
        {
            "NA-2231": {"year_group": 10, "sibling_name": "Riley Example"},
            "NA-2307": {"year_group": 8, "sibling_name": None},
        },
    ),
    "attendance": (
        {
            "pupil_id": "NA-2231",
            "academic_year": "2025/26",
            "attendance_pct": 71.5,
            "exclusions": 2,
            "pastoral_note": "Attendance has dropped since October; engages well in art.",
            "teacher_name": "Ms Ava Fakename",
            "safeguarding_log_ref": "SG-LOG-0091",
        },
        {
            "pupil_id": "NA-2307",
            "academic_year": "2025/26",
            "attendance_pct": 96.0,
            "exclusions": 0,
            "pastoral_note": "Settled; occasional conflict at lunchtime.",
            "teacher_name": "Mr Theo Notreal",
            "safeguarding_log_ref": None,
        },
    ),
    "behaviour": (
        {
            "pupil_id": "NA-2231",
            "recorded_on": "2025-10-15",
            "indicator": "truancy",
            "logged_by": "Mr Sol Placeholder",
        },
        {
            "pupil_id": "NA-2231",
            "recorded_on": "2025-11-02",
            "indicator": "verbal_aggression",
            "logged_by": "Ms Ava Fakename",
        },
    ),
    "strengths": (
        {"pupil_id": "NA-2231", "factor": "trusted_adult_at_school", "noted_on": "2025-09-30"},
        {"pupil_id": "NA-2231", "factor": "art_club_member", "noted_on": "2025-09-30"},
        {"pupil_id": "NA-2307", "factor": "good_peer_friendships", "noted_on": "2025-10-10"},
    ),
}

YOUTH_WORK_RECORDS: dict[str, Rows] = {
    "interventions": (
        {
            "participant_id": "BP-017",
            "programme": "detached_outreach",
            "started_on": "2025-10-20",
            "ended_on": None,
            "sessions_attended": 6,
            "youth_worker": "Rio Madeup",
            "session_notes": "Synthetic: talked about football, wants to join a club.",
        },
        {
            "participant_id": "BP-023",
            "programme": "mentoring",
            "started_on": "2024-03-01",
            "ended_on": "2024-09-30",
            "sessions_attended": 18,
            "youth_worker": "Sky Nonesuch",
            "session_notes": "Synthetic: completed the programme.",
        },
        {
            "participant_id": "BP-031",
            "programme": "after_school_club",
            "started_on": "2025-09-08",
            "ended_on": None,
            "sessions_attended": 9,
            "youth_worker": "Rio Madeup",
            "session_notes": "Synthetic: brings a younger cousin along.",
        },
    ),
    "protective-factors": (
        {"participant_id": "BP-017", "factor": "interest_in_sport", "noted_on": "2025-10-27"},
        {"participant_id": "BP-023", "factor": "peer_mentor_role", "noted_on": "2024-09-30"},
    ),
}

# Every agency's raw records, by agency slug.
SOURCE_RECORDS: dict[str, dict[str, Rows]] = {
    POLICE: POLICE_RECORDS,
    CHILDRENS_SERVICES: CHILDRENS_SERVICES_RECORDS,
    ACADEMY: ACADEMY_RECORDS,
    YOUTH_WORK: YOUTH_WORK_RECORDS,
}
