"""Read a run's records back from Pipedrive at the fewest tokens the API allows.

- with the duplicate scan (the default): one paginated list of the whole account per entity, which
  also says which source record each record is — organizations, persons and deals by `Novo Source
  ID`, activities, notes and files by their source marker (`loading.marker`) — so duplicates and
  ids reused for another record are found: 10 tokens per 500 (v2), notes and files 20 per 500 (v1);
- without it: organizations, persons, deals and activities in `ids=` batches of 100 (10 tokens
  each); notes and files (v1 has no `ids`) one by one (2 tokens) for a handful, else one paginated
  list (20 tokens per 500) filtered to the ids wanted;
- organization relationships: one by one (2 tokens each; listing is per organization, 20 each).

A delta run lists only what changed since it began writing (`updated_since`, where the list takes it),
so its read-back grows with the delta, not with the account: `run_window` finds that moment on
Pipedrive's own clock from a few records the run wrote.

The client's rate limiter keeps every call under the burst and daily limits; when the daily budget
is spent it raises DailyBudgetSpent, which the caller reports.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flitstack_dagster.entities import ENTITIES
from flitstack_dagster.loading.compare import parse_instant
from flitstack_dagster.loading.marker import MARKED, marker_of
from flitstack_dagster.pipedrive.errors import NotFound

IDENTIFIED = tuple(e.name for e in ENTITIES if e.scannable)  # every record says which source record it is
ONE_BY_ONE_UP_TO = 10  # v1: below this many, single GETs (2 tokens) beat one list page (20)
# a lost create is retried within seconds; the margin also absorbs our own write timestamps lagging the request
WINDOW_MARGIN = timedelta(minutes=10)


@dataclass
class Scan:
    """Every live record of one entity in the account, which source record each says it is, and
    the source identities held by more than one record."""

    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    identity: dict[int, str] = field(default_factory=dict)  # Pipedrive id -> source id (or unknown marker)
    by_source: dict[str, list[int]] = field(default_factory=dict)  # source id -> Pipedrive ids, ascending
    duplicates: dict[str, list[int]] = field(default_factory=dict)


def scan_entity(client, entity: str, source_key: str | None, markers: dict[str, str] | None = None, *,
                updated_since: datetime | None = None, also: Iterable[int] = ()) -> Scan:
    """One paginated list of the entity — the whole account, or with `updated_since` (where its list
    takes it) only the records changed since — plus the records at `also` the list did not hold, read
    by id. Identity: the `Novo Source ID` custom field (`source_key`), or for activities, notes and files
    the marker, turned into a source id by `markers` (marker -> source id; an unknown marker stays as it is)."""
    since = {"updated_since": updated_since} if updated_since and ENTITIES[entity].lists_updated_since else {}
    records = {int(rec.id): rec.model_dump() for rec in _list_all(client, entity)(**since)}
    if since:  # a whole-account list already holds every live record `also` names
        records.update(read_back(client, entity, [int(i) for i in also if int(i) not in records]))
    return identify(entity, records, source_key, markers or {})


def identify(entity: str, records: Mapping[int, dict[str, Any]], source_key: str | None,
             markers: dict[str, str]) -> Scan:
    """The live records among `records`, which source record each says it is, and the duplicates."""
    out = Scan()
    by_source: dict[str, list[int]] = defaultdict(list)
    for pid, d in sorted(records.items()):
        if d.get("is_deleted") or d.get("active_flag") is False:
            continue
        out.records[pid] = d
        value = _identity(entity, d, source_key, markers)
        if value:
            out.identity[pid] = value
            by_source[value].append(pid)
    out.by_source = dict(by_source)
    out.duplicates = {k: v for k, v in out.by_source.items() if len(v) > 1}
    return out


def run_window(client, writes: Mapping[str, Mapping[int, datetime]]) -> datetime | None:
    """When a run began writing, on Pipedrive's clock, less `WINDOW_MARGIN`; None when it can't be told.

    `writes`: entity -> Pipedrive id -> when we recorded our last write of it (our clock). A record's
    `update_time` is at or after our write unless the clocks differ, so the smallest gap between the
    two over a batch of written records bounds the clocks' offset from below: a window that starts
    too early costs a few tokens, one that starts too late would miss a duplicate."""
    for entity, written in writes.items():
        if not written or ENTITIES[entity].read_back != "ids":
            continue
        batch = sorted(written)[:ENTITIES[entity].read_back_batch or 1]
        gaps = [seen - written[pid] for pid, rec in read_back(client, entity, batch).items()
                if (seen := parse_instant(rec.get("update_time"))) is not None]
        if gaps:
            first = min(t for w in writes.values() for t in w.values())
            return first + min(gaps) - WINDOW_MARGIN
    return None


def _identity(entity: str, record: dict[str, Any], source_key: str | None, markers: dict[str, str]) -> str | None:
    if entity in MARKED:
        mark = marker_of(entity, record)
        return markers.get(mark, mark) if mark else None
    value = (record.get("custom_fields") or {}).get(source_key) if source_key else None
    return str(value) if value else None


def read_back(client, entity: str, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Pipedrive id -> the record as Pipedrive answers it (deleted or absent ids are left out)."""
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return {}
    how = ENTITIES[entity].read_back if entity in ENTITIES else None
    if how == "ids":
        return {int(r.id): r.model_dump() for r in _list_all(client, entity)(ids=wanted)
                if not getattr(r, "is_deleted", False)}
    if how == "v1":
        return _v1(wanted, getattr(client, f"get_{ENTITIES[entity].method_name}"), _list_all(client, entity))
    if how == "one_by_one":
        e = ENTITIES[entity]
        out = {}
        for i in wanted:
            d = _get_one(lambda i=i: client.request("GET", client.path(e.api, f"{e.collection}/{i}")))
            if d is not None and isinstance(d.get("data"), dict):
                out[i] = d["data"]
        return out
    raise ValueError(f"no read-back for {entity!r}")


def _list_all(client, entity: str):
    """The client's list of every record of the entity (`list_deals`)."""
    return getattr(client, f"list_{ENTITIES[entity].plural}")


def _v1(wanted: list[int], get_one, list_all) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    if len(wanted) <= ONE_BY_ONE_UP_TO:
        for i in wanted:
            rec = _get_one(lambda i=i: get_one(i))
            if rec is not None:
                out[i] = rec.model_dump()
    else:
        want = set(wanted)
        for rec in list_all():
            if int(rec.id) in want:
                out[int(rec.id)] = rec.model_dump()
    return {i: d for i, d in out.items() if d.get("active_flag") is not False}


def _get_one(fn):
    try:
        return fn()
    except NotFound:
        return None
