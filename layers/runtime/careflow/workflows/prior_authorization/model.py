"""Prior authorization attachments: which of the patient's documents answer a payer's request
for more information.

A coded document decides by rule: a ``DocumentReference.type`` (or a resource's code) that
carries a LOINC document code careflow maps (:data:`LOINC`), or a DiagnosticReport's HL7 v2
diagnostic service section (:data:`SECTIONS`), gives its class with no model call
(:func:`coded_class`). Only an uncoded document's human-readable content (its title,
description, type text; scrubbed of identifiers by the kit) is read by the model, with the
kind of resource it is. The baseline it must beat is the majority class.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from careflow.ml.features import Feature
from careflow.ml.registry import Example, HistoryRecord, ModelDef

OPERATIVE, IMAGING, LAB = "operative_note", "imaging_report", "lab_result"
HP, LMN, OTHER = "history_and_physical", "letter_of_medical_necessity", "other"
CLASSES = (OPERATIVE, IMAGING, LAB, HP, LMN, OTHER)

LOINC_SYSTEM = "http://loinc.org"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"

# LOINC document codes and the class each answers (display names as LOINC gives them).
LOINC: dict[str, str] = {
    "11504-8": OPERATIVE,  # Surgical operation note
    "28570-0": OPERATIVE,  # Procedure note
    "18748-4": IMAGING,  # Diagnostic imaging study
    "18782-3": IMAGING,  # Radiology Study observation (narrative)
    "11502-2": LAB,  # Laboratory report
    "26436-6": LAB,  # Laboratory studies (set)
    "34117-2": HP,  # History and physical note
    "11506-3": OTHER,  # Progress note
    "18842-5": OTHER,  # Discharge summary
    "11488-4": OTHER,  # Consult note
    "34108-1": OTHER,  # Outpatient note
}
# A DiagnosticReport's category (HL7 v2 table 0074, diagnostic service section).
SECTIONS: dict[str, str] = {
    "RAD": IMAGING,
    "CT": IMAGING,
    "RX": IMAGING,
    "NMR": IMAGING,
    "US": IMAGING,
    "LAB": LAB,
    "CH": LAB,
    "HM": LAB,
    "MB": LAB,
    "SP": LAB,
}

FEATURES = (
    Feature(
        "text",
        "text",
        "the document's human-readable content: title, description, type and category text "
        "(identifiers scrubbed before the model sees it)",
    ),
    Feature("resource", "category", "the FHIR resource kind (DocumentReference, Procedure...)"),
)


def coded_class(codings: Iterable[Mapping[str, Any]]) -> str | None:
    """The class a document's codings decide by rule, or None (the model reads its text)."""
    for c in codings:
        system, code = str(c.get("system") or ""), str(c.get("code") or "")
        if system == LOINC_SYSTEM and code in LOINC:
            return LOINC[code]
        if system == V2_0074 and code in SECTIONS:
            return SECTIONS[code]
    return None


def features_of(*, text: str, resource: str) -> dict[str, Any]:
    return {"text": text, "resource": resource}


def examples(history: Sequence[HistoryRecord]) -> list[Example]:
    """A hospital's coded documents label their own text: each record's ``documents`` (an
    export of the EHR's DocumentReferences, ``{"resource", "text", "codings"}``, or a
    labelled ``"label"``) gives one example; the state store never keeps document text."""
    out: list[Example] = []
    for rec in history:
        for doc in rec.get("documents", ()):
            label = doc.get("label") or coded_class(doc.get("codings", ()))
            if label in CLASSES and doc.get("text"):
                out.append((features_of(text=doc["text"], resource=doc["resource"]), label))
    return out


_PRIOR = {OPERATIVE: 0.22, IMAGING: 0.18, LAB: 0.2, HP: 0.1, LMN: 0.08, OTHER: 0.22}


def baseline(features: Mapping[str, Any]) -> dict[str, float]:
    """The majority class (``other``, the commonest document in a chart), always."""
    return {c: (1.0 if c == OTHER else 0.0) for c in CLASSES}


# -- the generator --------------------------------------------------------------------------
_SITES = (
    "left knee",
    "right knee",
    "lumbar spine",
    "cervical spine",
    "right shoulder",
    "left hip",
    "abdomen",
    "chest",
    "brain",
    "pelvis",
    "left forearm",
    "colon",
    "heart",
    "lung",
    "thyroid",
)
_PROCEDURES = (
    "appendectomy",
    "laparoscopic cholecystectomy",
    "total knee arthroplasty",
    "lumbar arthrodesis",
    "lobectomy of lung",
    "heart valve replacement",
    "excision of lesion",
    "biopsy",
    "colonoscopy with biopsy",
    "arthroscopic meniscectomy",
    "incision and drainage of abscess",
    "tracheotomy",
    "insertion of pacemaker",
    "hernia repair",
    "myringotomy and tube insertion",
    "spinal fusion",
    "carpal tunnel release",
    "rotator cuff repair",
)
_MODALITIES = (
    "MRI",
    "CT",
    "computed tomography",
    "magnetic resonance imaging",
    "x-ray",
    "radiograph",
    "ultrasound",
    "echography",
    "PET/CT",
    "mammogram",
    "DEXA scan",
    "fluoroscopy",
)
_LABS = (
    "complete blood count",
    "CBC with differential",
    "basic metabolic panel",
    "comprehensive metabolic panel",
    "lipid panel",
    "hemoglobin A1c",
    "free T4",
    "TSH",
    "serum potassium",
    "creatinine",
    "INR",
    "urinalysis",
    "blood culture",
    "gene mutation analysis",
    "CYP2D6 genotype",
    "IgE allergy panel",
    "C-reactive protein",
    "ESR",
    "vitamin D",
    "hepatitis panel",
)
_CONDITIONS = (
    "osteoarthritis",
    "lumbar stenosis",
    "Crohn's disease",
    "rheumatoid arthritis",
    "malignant tumor",
    "type 2 diabetes",
    "heart valve disorder",
    "abscess",
    "appendicitis",
    "meniscal tear",
    "obesity",
    "sepsis",
    "hypothyroidism",
    "melanoma",
    "pneumonia",
    "chronic pain",
)
_OTHER = (
    "Progress note: {c}, follow-up visit, continue current plan",
    "Discharge summary after admission for {c}",
    "Nursing note: patient ambulating, vitals stable",
    "Patient education: {c} self-management",
    "Care plan for {c}: weight management, diet and exercise",
    "Physical therapy evaluation, passive range of motion of {s}",
    "Consent form for treatment",
    "Referral to specialist for {c}",
    "Telephone encounter: patient asked about appointment",
    "Medication list reconciliation",
    "Immunization record",
    "Advance directive",
    "Insurance card copy",
    "Home care services, assisted with bathing and dressing",
    "Social work assessment",
    "Dietitian consult for {c}",
    "Chemotherapy regimen cycle 2",
    "Vaginal delivery, term pregnancy",
    "Consult note: cardiology for {c}",
    "Alert: message from laboratory to the care team",
)
_TEMPLATES: dict[str, tuple[str, ...]] = {
    OPERATIVE: (
        "Operative note: {p} of {s}",
        "Op note. Procedure: {p}. Preoperative diagnosis: {c}. Postoperative diagnosis: same",
        "Surgical operation note - {p}, estimated blood loss minimal, no complications",
        "Procedure note: {p}, anesthesia general, findings consistent with {c}",
        "Brief op note {p} {s}",
        "Operation report: {p}; surgeon and assistant; specimen sent to pathology",
        "{p} performed under anesthesia, incision closed in layers",
        "Post-operative report, {p} for {c}",
        "Procedure: {p}. Reason: {c}. Body site: {s}. Outcome: successful",
    ),
    IMAGING: (
        "{m} of {s}: impression no acute abnormality",
        "Radiology report: {m} {s}, findings consistent with {c}",
        "Diagnostic imaging study: {m} {s} with and without contrast",
        "Imaging: {m} of the {s}. Impression: {c}",
        "{m} {s} report, radiologist reading",
        "Study: {m}. Indication: {c}. Conclusion: degenerative changes",
        "Chest CT, check for metastatic disease",
        "{m} {s}",
    ),
    LAB: (
        "Laboratory report: {l}",
        "Lab results: {l}, {l2}",
        "{l} result within reference range",
        "Pathology / laboratory: {l} abnormal, flagged high",
        "Serum {l} [mass/volume] in plasma",
        "Specimen: serum. Test: {l}. Fasting status noted",
        "Lab panel {l} {l2} results",
        "{l}",
    ),
    HP: (
        "History and physical: {c}, review of systems negative",
        "H&P. Chief complaint: {c}. Past medical history, physical exam",
        "Admission history and physical examination",
        "History & Physical - preoperative evaluation for {p}",
        "Physical examination and history, assessment and plan for {c}",
        "Outpatient history and physical, general medicine",
        "H and P: HPI {c}; ROS; PE; A/P",
    ),
    LMN: (
        "Letter of medical necessity for {p}",
        "Medical necessity letter: {p} is medically necessary for {c}",
        "To the payer: statement of medical necessity, {c}, conservative therapy failed",
        "Letter to insurer supporting {p}; patient has tried physical therapy",
        "LMN - {p} - {c}",
        "Justification of medical necessity: {m} required to evaluate {c}",
        "Dear medical director, I am writing to request coverage of {p}",
    ),
}
_RESOURCES = {
    OPERATIVE: (("DocumentReference", 0.7), ("Procedure", 0.25), ("ServiceRequest", 0.05)),
    IMAGING: (("DocumentReference", 0.5), ("DiagnosticReport", 0.35), ("ServiceRequest", 0.15)),
    LAB: (("DocumentReference", 0.3), ("DiagnosticReport", 0.45), ("ServiceRequest", 0.25)),
    HP: (("DocumentReference", 1.0),),
    LMN: (("DocumentReference", 0.8), ("Communication", 0.2)),
    OTHER: (
        ("DocumentReference", 0.45),
        ("CarePlan", 0.15),
        ("Procedure", 0.15),
        ("Communication", 0.1),
        ("ServiceRequest", 0.15),
    ),
}
_NAMES = ("Alex Rivera", "Sam Okafor", "Jordan Lee", "Pat Nguyen", "Chris Novak", "Dana Kim")


def _pick(rng: random.Random, weighted: Sequence[tuple[str, float]]) -> str:
    x = rng.random()
    for value, w in weighted:
        x -= w
        if x <= 0:
            return value
    return weighted[-1][0]


def _text(rng: random.Random, label: str) -> str:
    fill = {
        "s": rng.choice(_SITES),
        "p": rng.choice(_PROCEDURES),
        "m": rng.choice(_MODALITIES),
        "l": rng.choice(_LABS),
        "l2": rng.choice(_LABS),
        "c": rng.choice(_CONDITIONS),
    }
    pool = _OTHER if label == OTHER else _TEMPLATES[label]
    text = rng.choice(pool).format(**fill)
    if rng.random() < 0.25:  # mixed: a mention of another kind of document
        other = rng.choice([c for c in CLASSES if c != label])
        pool2 = _OTHER if other == OTHER else _TEMPLATES[other]
        words = rng.choice(pool2).format(**fill).split()
        text += " ; " + " ".join(words[: rng.randint(1, 3)])
    if rng.random() < 0.15:  # short: a title only
        text = " ".join(text.split()[: rng.randint(1, 3)])
    if rng.random() < 0.3:  # a header with (fake) identifiers: the kit scrubs them
        header = rng.choice(
            (
                f"Name: {rng.choice(_NAMES)}\n",
                f"MRN: {rng.randrange(10**7, 10**8)}\n",
                f"DOB: 19{rng.randrange(30, 99)}-0{rng.randrange(1, 9)}-1{rng.randrange(0, 9)}\n",
                f"Phone ({rng.randrange(200, 999)}) 555-{rng.randrange(1000, 9999)}\n",
            )
        )
        text = header + text
    if rng.random() < 0.1:
        text = text.upper()
    if rng.random() < 0.05:  # noise: a dropped word
        words = text.split()
        if len(words) > 3:
            del words[rng.randrange(len(words))]
            text = " ".join(words)
    return text


def generate(rng: random.Random, count: int) -> list[HistoryRecord]:
    """A chart export per prior authorization: 1-6 documents each, classes in the shares of
    :data:`_PRIOR` (other most common), each from per-class vocabulary (procedures, sites,
    modalities, lab tests, conditions) in varied templates; a quarter mention another kind
    of document, 15% are a title of 1-3 words, 10% upper case, 5% lose a word, and 30%
    start with a header carrying fake identifiers (Name:, MRN, DOB, phone) for the scrubber.
    The resource kind follows the class loosely (a lab result is often a DiagnosticReport)."""
    out: list[HistoryRecord] = []
    classes, weights = list(_PRIOR), list(_PRIOR.values())
    for n in range(count):
        docs = []
        for _ in range(rng.randint(1, 6)):
            label = rng.choices(classes, weights)[0]
            docs.append(
                {
                    "resource": _pick(rng, _RESOURCES[label]),
                    "text": _text(rng, label),
                    "label": label,
                }
            )
        iid = f"gen-{n:05d}"
        fac = "fac-north" if rng.random() < 0.6 else "fac-south"
        out.append(
            {
                "workflow": "prior-authorization",
                "facility_id": fac,
                "instance": {
                    "instance_id": iid,
                    "workflow_id": "prior-authorization",
                    "facility_id": fac,
                },
                "milestones": [],
                "tasks": [],
                "audit": [],
                "documents": docs,
            }
        )
    return out


# -- the external evaluation set: HL7's FHIR R4 examples, labelled by careflow -----------------
FIXTURES = Path(__file__).resolve().parents[5] / "tests" / "fixtures"
LABELS = FIXTURES / "attachment-labels.json"
# The human-readable fields a resource's text is built from; references (people, places,
# encounters) and identifiers are never read.
_TEXT_FIELDS = (
    "type",
    "category",
    "code",
    "title",
    "description",
    "conclusion",
    "reasonCode",
    "bodySite",
    "outcome",
    "complication",
    "followUp",
    "usedCode",
    "note",
    "orderDetail",
    "payload",
    "activity",
    "detail",
    "content",
    "attachment",
)
_STRINGS = ("text", "display", "title", "description", "conclusion", "contentString")


def _strings(node: Any) -> list[str]:
    if isinstance(node, list):
        return [s for x in node for s in _strings(x)]
    if not isinstance(node, dict) or "reference" in node:
        return []
    out: list[str] = []
    for key, value in node.items():
        if key in _STRINGS and isinstance(value, str):
            out.append(value)
        elif key in _TEXT_FIELDS or key in ("coding", "concept"):
            out.extend(_strings(value))
    return out


def resource_text(resource: Mapping[str, Any], *, skip: Sequence[str] = ()) -> str:
    """A FHIR resource's human-readable text from its coded and descriptive fields (the
    narrative ``text.div`` is not read), never its references or identifiers."""
    parts: list[str] = []
    for key in _TEXT_FIELDS:
        if key in resource and key not in skip:
            value = resource[key]
            parts.extend([value] if isinstance(value, str) else _strings(value))
    seen: list[str] = []
    for p in (" ".join(p.split()) for p in parts):
        if p and p not in seen:
            seen.append(p)
    return " ; ".join(seen)


def fhir_examples() -> list[Example]:
    """The labelled HL7 examples as (features, label), or [] without the repository."""
    if not LABELS.is_file():
        return []
    manifest = json.loads(LABELS.read_text(encoding="utf-8"))
    out: list[Example] = []
    for item in manifest["labels"]:
        raw = json.loads((FIXTURES / "fhir-r4" / item["file"]).read_text(encoding="utf-8"))
        text = resource_text(raw, skip=item.get("skip_fields", ()))
        if text:
            out.append((features_of(text=text, resource=raw["resourceType"]), item["label"]))
    return out


def external() -> dict[str, list[Example]]:
    found = fhir_examples()
    return {"fhir_r4_examples": found} if found else {}


MODEL = ModelDef(
    id="pa_attachments",
    title="Prior authorization attachments by document kind",
    workflow="prior-authorization",
    owner="Revenue cycle (utilization review)",
    features=FEATURES,
    classes=CLASSES,
    examples=examples,
    baseline=baseline,
    baseline_name="majority class (other)",
    metric="macro_f1",
    margin=0.3,
    generate=generate,
    history_size=1500,
    external=external,
)
