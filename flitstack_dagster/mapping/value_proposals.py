"""Evidence-based proposals for categorical values: each value's target, confidence and one-line reason.

Text: the value is normalised (case, accents, punctuation), then matched against the words each
meaning goes by — standard names, synonyms (a few other languages included) and abbreviations
(`Comp.`, `WIP`, `Canc`). Data (statuses only): the share of its work orders with a completion date
decides closed versus open, the status log adds re-entry (entered from a closed status), first
position and whether histories move on. Account: a stage of the same name already in the pipeline,
and the account's activity types for activity-log entry types (`Phone` → `Call`, `Site Visit` →
`Meeting`; a note-like entry stays a note, one no type means stays a note and waits for a decision).
Work-order request types map to the documented types by their words (`Repair` → `Corrective`,
`PM` → `Preventive`), else become an option of their own.

A proposal below `CONFIDENT` is still proposed but needs the lead's explicit decision. A closed
(won/lost) target for a status whose work orders mostly have no completion date and move on is
never confident: data that contradicts the name caps the confidence.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

from flitstack_dagster.mapping.evidence import StatusEvidence
from flitstack_dagster.mapping.model import StatusTarget, ValueProposal
from flitstack_dagster.mapping.standard import DEFAULT_LOST_REASON, STANDARD_STATUS

CONFIDENT = 0.75  # below this a proposal needs an explicit decision
MIN_EVIDENCE = 3  # work orders needed before the data counts
UNSURE = 0.55

# meaning -> words it goes by (normalised: lower case, no accents, single spaces)
STATUS_WORDS: dict[str, tuple[str, ...]] = {
    "completed": ("completed", "complete", "closed", "done", "finished", "resolved", "fixed", "cmpl", "cmp",
                  "termine", "fini", "clos", "ferme", "acheve", "abgeschlossen", "erledigt", "fertig", "geschlossen",
                  "completado", "terminado", "finalizado", "cerrado", "concluido", "completato", "chiuso",
                  "afgerond", "gesloten", "voltooid", "klaar", "finalizada", "cerrada"),
    "cancelled": ("cancelled", "canceled", "cancel", "canc", "cxl", "void", "voided", "abandoned", "rejected",
                  "declined", "withdrawn", "duplicate", "annule", "storniert", "abgebrochen", "abgelehnt",
                  "cancelado", "anulado", "cancelada", "annullato", "geannuleerd", "rechazado"),
    "on_hold": ("on hold", "hold", "held", "waiting", "awaiting", "pending", "paused", "suspended", "deferred",
                "blocked", "parked", "wait", "backorder", "back order", "backordered", "on order", "en espera", "espera", "en attente", "attente",
                "wartend", "warten", "angehalten", "pausiert", "zuruckgestellt", "in attesa", "sospeso",
                "pendiente", "in afwachting", "wacht", "awt"),
    "in_progress": ("in progress", "wip", "work in progress", "working", "started", "underway", "ongoing",
                    "in work", "inprog", "in prog", "dispatched", "on site", "en route", "in bearbeitung",
                    "in arbeit", "en cours", "en progreso", "en curso", "en proceso", "in corso", "in lavorazione",
                    "bezig", "in uitvoering", "progress"),
    "scheduled": ("scheduled", "sched", "planned", "booked", "geplant", "eingeplant", "planifie", "programme",
                  "programado", "programada", "pianificato", "gepland", "ingepland"),
    "new": ("new", "submitted", "requested", "received", "created", "draft", "logged", "triage", "unassigned",
            "neu", "nouveau", "nouvelle", "nuevo", "nueva", "nuovo", "nieuw", "eingegangen"),
    "open": ("open", "opened", "assigned", "reassigned", "approved", "acknowledged", "accepted", "offen",
             "ouvert", "abierto", "abierta", "aperto", "toegewezen", "zugewiesen", "asignado"),
    "reopened": ("reopened", "re opened", "reopen", "re open", "wiedereroffnet", "wieder offen", "rouvert",
                 "reouvert", "reabierto", "reabierta", "riaperto", "heropend", "recalled", "returned"),
}
STATUS_TARGET: dict[str, StatusTarget] = {
    "new": StatusTarget(stage="New"), "open": StatusTarget(stage="Open"), "reopened": StatusTarget(stage="Open"),
    "scheduled": StatusTarget(stage="Scheduled"), "in_progress": StatusTarget(stage="In Progress"),
    "on_hold": StatusTarget(stage="On Hold"), "completed": StatusTarget(stage="Completed", status="won"),
    "cancelled": StatusTarget(stage="Open", status="lost", lost_reason=DEFAULT_LOST_REASON),
}
CLOSED = {"completed", "cancelled"}
PRIORITY_WORDS: dict[str, tuple[str, ...]] = {
    "Emergency": ("emergency", "urgent", "critical", "asap", "immediate", "p1", "1", "crit", "emerg", "notfall",
                  "dringend", "kritisch", "sofort", "urgente", "urgence", "critique", "critico", "spoed", "urgentissimo"),
    "High": ("high", "hi", "p2", "2", "important", "hoch", "haute", "eleve", "elevee", "alta", "alto", "hoog"),
    "Medium": ("medium", "med", "normal", "moderate", "p3", "3", "mittel", "moyenne", "moyen", "media", "medio",
               "normaal", "gemiddeld"),
    "Low": ("low", "lo", "minor", "routine", "p4", "4", "niedrig", "gering", "basse", "faible", "baja", "bajo",
            "bassa", "basso", "laag"),
}
ROLE_WORDS: dict[str, tuple[str, ...]] = {
    "Technician": ("technician", "tech", "engineer", "mechanic", "techniker", "technicien", "tecnico", "monteur"),
    "Requester": ("requester", "requestor", "req", "customer", "antragsteller", "demandeur", "solicitante",
                  "richiedente", "aanvrager"),
    "Technician/Requester": ("technician requester", "tech requester", "tech req", "both"),
}

REQUEST_WORDS: dict[str, tuple[str, ...]] = {
    "Corrective": ("corrective", "corr", "cm", "repair", "reactive", "breakdown", "fix", "emergency repair",
                   "korrektiv", "reparatur", "instandsetzung", "correctif", "correctivo", "correttivo", "reparacion",
                   "storing", "herstel"),
    "Preventive": ("preventive", "preventative", "prev", "pm", "planned", "planned maintenance", "scheduled maintenance",
                   "routine maintenance", "praventiv", "vorbeugend", "wartung", "preventif", "preventivo",
                   "preventiva", "onderhoud", "gepland onderhoud"),
    "Service Request": ("service request", "request", "sr", "service", "svc req", "customer request", "demande",
                        "demande de service", "anfrage", "serviceanfrage", "solicitud", "richiesta", "aanvraag"),
    "Inspection": ("inspection", "insp", "inspect", "audit", "check", "survey", "prufung", "inspektion", "kontrolle",
                   "controle", "inspeccion", "revision", "ispezione", "keuring"),
}
# Pipedrive's default activity types and the words an activity-log entry type uses for them
ACTIVITY_WORDS: dict[str, tuple[str, ...]] = {
    "Call": ("call", "phone", "phone call", "telephone", "tel", "anruf", "telefonat", "appel", "llamada",
             "telefonata", "gesprek"),
    "Email": ("email", "e mail", "mail", "courriel", "correo", "correo electronico"),
    "Meeting": ("meeting", "mtg", "visit", "site visit", "appointment", "besuch", "termin", "besprechung", "reunion",
                "rendez vous", "visite", "visita", "riunione", "afspraak", "bezoek"),
    "Task": ("task", "todo", "to do", "aufgabe", "tache", "tarea", "compito", "taak"),
}
DEFAULT_ACTIVITY_TYPES = ("Call", "Meeting", "Task", "Deadline", "Email", "Lunch")
NOTE_WORDS = ("note", "notes", "comment", "memo", "remark", "notiz", "bemerkung", "kommentar", "nota", "comentario",
              "commentaire", "opmerking", "notitie")


# list values that often arrive in another language: an option of the English word also goes by these
LIST_WORDS: dict[str, tuple[str, ...]] = {
    "north": ("nord", "norte", "noord", "n"), "south": ("sud", "sur", "sued", "zuid", "s"),
    "east": ("est", "ost", "este", "oost", "e"), "west": ("ouest", "oeste", "ovest", "w"),
    "yes": ("oui", "ja", "si", "y"), "no": ("non", "nein", "n"),
}


def normalise(s: str) -> str:
    """Lower case, accents dropped, anything but letters and digits a single space."""
    s = unicodedata.normalize("NFKD", s.casefold())
    s = "".join(c for c in s if not unicodedata.combining(c)).replace("ß", "ss")
    return " ".join(re.sub(r"[^0-9a-z]+", " ", s).split())


@dataclass(frozen=True)
class TextMatch:
    meaning: str | None
    score: float
    why: str


def _word_score(value: str, word: str) -> float:
    """How strongly normalised `value` says `word`: the whole value, a phrase in it, or an abbreviation."""
    joined, w = value.replace(" ", ""), word.replace(" ", "")
    if joined == w:
        return 0.92
    if re.search(rf"(^| ){re.escape(word)}( |$)", value):
        return 0.8 + 0.1 * len(w) / max(len(joined), 1)
    tokens = value.split()
    if len(tokens) == 1 and len(joined) >= 3 and len(w) > len(joined) and w.startswith(joined) and " " not in word:
        return 0.8  # an abbreviation of the word (`Comp.`, `Canc`, `Sched`)
    return 0.0


def match_text(value: str, words: dict[str, tuple[str, ...]], exact: dict[str, str] | None = None) -> TextMatch:
    """The meaning `value` names, its score and why; conflicting meanings lower the score."""
    n = normalise(value)
    for k, meaning in (exact or {}).items():
        if normalise(k) == n:
            return TextMatch(meaning, 1.0, f"standard value '{k}'")
    scored: list[tuple[float, int, str, str]] = []
    for meaning, ws in words.items():
        # within a meaning the first-listed word wins a tie (the English one for an abbreviation)
        score, _, w = max(((_word_score(n, w), -i, w) for i, w in enumerate(ws)), default=(0.0, 0, ""))
        if score > 0:
            scored.append((score, len(w), meaning, w))
    if not scored:
        return TextMatch(None, 0.0, "the name matches no known meaning")
    scored.sort(reverse=True)
    score, _, meaning, word = scored[0]
    how = "is an abbreviation of" if score == 0.8 and len(word.replace(" ", "")) > len(n.replace(" ", "")) else "says"
    why = f"the name {how} '{word}'"
    if len(scored) > 1 and scored[1][0] >= score - 0.05 and scored[1][2] != meaning:
        other = scored[1]
        if other[3].replace(" ", "") in word.replace(" ", ""):  # "reopened" says more than the "opened" in it
            return TextMatch(meaning, round(score, 2), why)
        if other[1] > scored[0][1]:  # the longer, more specific word wins ("reopened" over "open")
            score, _, meaning, word = other
            why = f"the name says '{word}'"
        else:
            score -= 0.2
            why += f" but also '{other[3]}'"
    return TextMatch(meaning, round(score, 2), why)


def _pct(x: float | None) -> str:
    return f"{round(100 * (x or 0))}%"


def _describe(ev: StatusEvidence) -> str:
    bits = [f"{_pct(ev.completed_share)} of its {ev.work_orders} work order(s) have a completion date"]
    if ev.histories:
        bits.append(f"it ends {_pct(ev.terminal_share)} of the status histories it is in")
        if (ev.reentry_share or 0) >= 0.3:
            bits.append(f"{_pct(ev.reentry_share)} of entries come from a closed status")
    return " and ".join(bits)


def _by_data(ev: StatusEvidence) -> str:
    """The open meaning the data points at when the name says nothing usable."""
    if (ev.reentry_share or 0) >= 0.5:
        return "reopened"
    if (ev.first_share or 0) >= 0.8:
        return "new"
    if (ev.terminal_share or 0) >= 0.8:
        return "on_hold"
    return "in_progress"


def _target(meaning: str, value: str) -> StatusTarget:
    t = STATUS_TARGET[meaning].model_copy()
    if meaning == "cancelled" and normalise(value) not in {"cancelled", "canceled", "canc", "cancel", "cxl"}:
        t.lost_reason = f"{value.strip()} in Novo"
    return t


def describe_status(t: StatusTarget | None) -> str:
    """How a status target reads in a proposal: `Completed (won)`, `Open (lost)`, `On Hold`."""
    if t is None:
        return "unmapped"
    return t.stage if t.status == "open" else f"{t.stage} ({t.status})"


def _decide(value: str, text: TextMatch, ev: StatusEvidence | None) -> tuple[str, float, str]:
    """(meaning, confidence, reason) from the name and the data."""
    enough = ev is not None and ev.work_orders >= MIN_EVIDENCE
    if not enough:
        if text.meaning is None:
            return "on_hold", 0.3, "no name match and too few work orders to judge: parked on an open stage"
        conf = text.score
        if text.meaning == "completed" and ev is not None and ev.work_orders and (ev.completed_share or 0) < 0.5:
            conf = UNSURE  # named closed, yet its work orders have no completion date
        elif text.meaning in CLOSED and text.score < 0.9:
            conf = min(conf, 0.7)
        return text.meaning, conf, text.why + " (too few work orders to check)"
    assert ev is not None
    done = ev.completed_share or 0.0
    data = _describe(ev)
    moves_on = ev.histories > 0 and (ev.terminal_share or 0) < 0.8  # a closed status ends its histories
    if done >= 0.8:
        if text.meaning == "completed":
            return "completed", max(text.score, 0.9 if done >= 0.9 else 0.8), f"{data}; {text.why}"
        if text.meaning is None:
            return "completed", 0.8 if done >= 0.9 else 0.65, f"{data}; the name matches no known meaning"
        return "completed", 0.6, f"{data}, though {text.why}: check it"
    if done <= 0.2:
        if text.meaning == "completed":
            m = _by_data(ev)
            return m, UNSURE, f"{text.why}, but {data}: not closed"
        if text.meaning == "cancelled":
            if moves_on:
                return _by_data(ev), UNSURE, f"{text.why}, but {data}: its work orders go on"
            return "cancelled", text.score if text.score >= 0.9 else min(text.score, 0.78), f"{text.why}; {data}"
        if text.meaning is None:
            m = _by_data(ev)
            return m, 0.6, f"the name matches no known meaning; {data}"
        if text.meaning == "open" and (ev.reentry_share or 0) >= 0.5:
            return "reopened", 0.8, f"{data}; {text.why}"
        return text.meaning, min(text.score + 0.05, 0.99), f"{text.why}; {data}"
    # a mix of completed and open work orders: the name decides, never confidently closed
    if text.meaning is None:
        return "in_progress", 0.4, f"the name matches no known meaning; {data}"
    conf = min(text.score, 0.7) if text.meaning in CLOSED else text.score - 0.1
    return text.meaning, round(conf, 2), f"{text.why}; {data}"


def propose_status(value: str, ev: StatusEvidence | None, account_stages: list[str] | None = None
                   ) -> tuple[StatusTarget, ValueProposal]:
    """The stage and deal status for one work-order status, with its confidence and reason."""
    if value in STANDARD_STATUS:
        t = STANDARD_STATUS[value].model_copy()
        return t, ValueProposal(proposed=describe_status(t), confidence=1.0, reason="standard Novo status (spec)")
    text = match_text(value, STATUS_WORDS, {k: _meaning_of_standard(k) for k in STANDARD_STATUS})
    meaning, conf, why = _decide(value, text, ev)
    t = _target(meaning, value)
    stage = next((s for s in account_stages or [] if normalise(s) == normalise(value)), None)
    if stage is not None and meaning not in CLOSED:
        t = StatusTarget(stage=stage)
        conf, why = max(conf, 0.9), f"the account's pipeline already has stage '{stage}'; {why}"
    conf = round(max(0.0, min(conf, 0.99)), 2)
    return t, ValueProposal(proposed=describe_status(t), confidence=conf, reason=f"{why} → {describe_status(t)}")


def _meaning_of_standard(status: str) -> str:
    t = STANDARD_STATUS[status]
    if t.status == "won":
        return "completed"
    if t.status == "lost":
        return "cancelled"
    return {"New": "new", "Scheduled": "scheduled", "In Progress": "in_progress", "On Hold": "on_hold"}.get(t.stage, "open")


def propose_option(value: str, options: list[str], words: dict[str, tuple[str, ...]] | None = None,
                   new_option_confidence: float = 0.8) -> tuple[str, ValueProposal]:
    """The option of a list field one value lands on: an existing one it means, else a new option of its name."""
    n = normalise(value)
    for o in options:
        if normalise(o) == n:
            return o, ValueProposal(proposed=o, confidence=1.0 if o == value else 0.95,
                                    reason="declared option" if o == value else f"same name as option '{o}'")
    if words is None:
        words = {o: LIST_WORDS[normalise(o)] for o in options if normalise(o) in LIST_WORDS}
    text = match_text(value, {k: v for k, v in words.items() if k in options})
    if text.meaning is not None:
        return text.meaning, ValueProposal(proposed=text.meaning, confidence=min(text.score, 0.95),
                                           reason=f"{text.why} → option '{text.meaning}'")
    # a typo rarely hits the first letter: on equal similarity the option starting like the value wins
    # different numbers are different values ("Ward 99" is not a typo of "Ward 9")
    near = sorted(((difflib.SequenceMatcher(None, n, normalise(o)).ratio(), normalise(o)[:1] == n[:1], o)
                   for o in options if _digits(o) == _digits(value)), reverse=True)
    if near and near[0][0] >= 0.75:
        score, _, o = near[0]
        conf = 0.85 if score >= 0.9 else UNSURE
        return o, ValueProposal(proposed=o, confidence=conf, reason=f"spelled like option '{o}' ({score:.2f})")
    return value, ValueProposal(proposed=value, confidence=new_option_confidence, decision="add option",
                                reason=f"outside the field's options and like none of them: add option '{value}'")


def propose_activity_type(value: str, account_types: list[str] | None = None) -> tuple[str, ValueProposal]:
    """The activity type an activity-log entry type becomes ("" = kept as a note, not an activity)."""
    types = list(account_types or DEFAULT_ACTIVITY_TYPES)
    n = normalise(value)
    note = match_text(value, {"note": NOTE_WORDS})
    if note.meaning is not None and note.score >= 0.8:
        return "", set_aside(value, f"{note.why}: kept as a note on the deal or organization, not an activity",
                             1.0 if value == "Note" else min(note.score + 0.05, 0.95))
    for t in types:
        if normalise(t) == n:
            return t, ValueProposal(proposed=t, confidence=1.0 if t == value else 0.95,
                                    reason=f"the account has activity type '{t}'")
    words = {t: ACTIVITY_WORDS[k] for t in types for k in ACTIVITY_WORDS if normalise(k) == normalise(t)}
    text = match_text(value, words)
    if text.meaning is not None:
        return text.meaning, ValueProposal(proposed=text.meaning, confidence=min(text.score, 0.9),
                                           reason=f"{text.why} → the account's activity type '{text.meaning}'")
    return "", set_aside(value, (
        f"no activity type of the account means '{value.strip()}': kept as a note that names its type; to make "
        f"it an activity, map it to one of {', '.join(types)} or to '{value.strip()}' (a new activity type)"), UNSURE)


def _digits(s: str) -> list[str]:
    return re.findall(r"\d+", s)


def set_aside(value: str, why: str, confidence: float = 0.8) -> ValueProposal:
    """A value left empty on purpose (the field stays blank for its records)."""
    return ValueProposal(proposed="", confidence=confidence, decision="set aside", reason=why)


__all__ = ["CONFIDENT", "DEFAULT_ACTIVITY_TYPES", "PRIORITY_WORDS", "REQUEST_WORDS", "ROLE_WORDS", "STATUS_WORDS",
           "describe_status", "match_text", "normalise", "propose_activity_type", "propose_option", "propose_status",
           "set_aside"]
