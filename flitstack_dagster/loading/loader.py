"""Load one shaped entity into Pipedrive: create what is new, PATCH what changed, skip the rest.

One request per record (Pipedrive has no bulk create), concurrent up to what the client's rate
limiter allows. Every landed record is written to the id map and audit log as it lands, so a kill
at any point loses nothing: a create whose answer never came back is found again by its source id
before it is tried again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from flitstack_dagster.entities import ENTITIES
from flitstack_dagster.loading.marker import (
    MARKER_FIELD,
    marked_file_name,
    marker,
    marker_of,
    with_marker,
    without_marker,
)
from flitstack_dagster.loading.resolve import Resolver, Unresolved, before_values, changed_fields
from flitstack_dagster.loading.store import LoadStore, require_one_source_per_id
from flitstack_dagster.pipedrive.errors import DailyBudgetSpent, NotFound, PipedriveError
from flitstack_dagster.pipedrive.limits import file_limit_text

log = logging.getLogger(__name__)

SOURCE_ID_FIELD = "Novo Source ID"
# answers that refuse one record (validation, a vanished reference): that record is set aside with
# Pipedrive's message and the load goes on
REJECTED = {400, 404, 410, 422}


@dataclass
class LoadResult:
    entity: str
    total: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    adopted: int = 0
    set_aside: list[dict[str, Any]] = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0
    stopped: str | None = None  # why the load stopped before the end (daily budget), else None
    resets_at: datetime | None = None  # when the spent daily budget resets (set with `stopped`)

    @property
    def done(self) -> int:
        return self.created + self.updated + self.skipped + self.adopted + len(self.set_aside)


Progress = Callable[[LoadResult], None]


def eta(result: LoadResult, usable_daily_tokens: int | None) -> str:
    """Time left at the current rate, and in days of token budget when the budget is what binds."""
    if not result.done or not result.seconds:
        return "ETA unknown"
    left = result.total - result.done
    text = f"ETA {left * result.seconds / result.done:,.0f} s"
    if usable_daily_tokens and result.tokens:
        days = left * (result.tokens / result.done) / usable_daily_tokens
        text += f" ({days:.1f} days of token budget)" if days >= 0.1 else ""
    return text


class EntityApi:
    """How one entity is created, updated, deleted and found again after an ambiguous create."""

    searchable = False  # has the `Novo Source ID` custom field

    def __init__(self, client, entity: str, resolver: Resolver):
        self.client, self.entity, self.resolver = client, entity, resolver
        self.method = ENTITIES[entity].method_name  # the client's `create_<…>` / `update_<…>` / `delete_<…>`
        # Pipedrive ids that already belong to a source record: a lookup after a lost answer must
        # never adopt one of them for another record (two labor lines can look alike)
        self.taken: set[int] = set()
        self._claim_lock = threading.Lock()

    def claim(self, candidates: Iterable[int]) -> int | None:
        """The first candidate no other source record owns, reserved for the caller."""
        with self._claim_lock:
            for pid in candidates:
                if int(pid) not in self.taken:
                    self.taken.add(int(pid))
                    return int(pid)
        return None

    def create(self, body: dict[str, Any], row: dict[str, Any], find: Callable[[], int | None], check_first: bool
               ) -> tuple[int, bool]:
        return self.client.create_idempotent(self.method, body, find, check_first=check_first)

    def update(self, pid: int, changes: dict[str, Any]) -> None:
        getattr(self.client, f"update_{self.method}")(pid, changes)

    def delete(self, pid: int) -> None:
        getattr(self.client, f"delete_{self.method}")(pid)

    def finder(self, row: dict[str, Any], body: dict[str, Any]) -> Callable[[], int | None]:
        key = self.resolver.registry.fields.get(self.entity, {}).get(SOURCE_ID_FIELD)
        if key is None:
            return lambda: None
        return self.client.finder(self.entity, key.key, row["source_id"])


def by_marker(entity: str, row: dict[str, Any], records: Iterable[Any], looks_alike: Callable[[Any], bool]
              ) -> list[int]:
    """Ids of the records carrying this row's marker; records without any marker (loaded before
    markers existed) only when they look alike, after every marked match."""
    mark = marker(entity, row["source_id"])
    marked, unmarked = [], []
    for rec in records:
        carried = marker_of(entity, {MARKER_FIELD[entity]: getattr(rec, MARKER_FIELD[entity], None)})
        if carried == mark:
            marked.append(int(rec.id))
        elif carried is None and looks_alike(rec):
            unmarked.append(int(rec.id))
    return sorted(marked) + sorted(unmarked)


class ActivityApi(EntityApi):
    def finder(self, row, body):
        def looks_alike(a) -> bool:
            return (a.subject == body.get("subject") and str(a.due_date) == str(body.get("due_date"))
                    and str(getattr(a, "due_time", None) or "")[:5] == str(body.get("due_time") or "")[:5]
                    and (body.get("type") is None or getattr(a, "type", None) == body.get("type")))

        def find() -> int | None:
            filters = {k: body[k] for k in ("deal_id", "org_id") if body.get(k)}
            return self.claim(by_marker("activity", row, self.client.list_activities(**filters), looks_alike))

        return find


class NoteApi(EntityApi):
    def finder(self, row, body):
        def find() -> int | None:
            filters = {k: body[k] for k in ("deal_id", "org_id", "person_id") if body.get(k)}
            return self.claim(by_marker("note", row, self.client.list_notes(**filters),
                                        lambda n: (n.content or "") == without_marker(body.get("content"))))

        return find


class RelationshipApi(EntityApi):
    def finder(self, row, body):
        def find() -> int | None:
            return self.claim(
                r.id for r in self.client.list_organization_relationships(body["rel_linked_org_id"])
                if (r.owner_org_id, r.linked_org_id) == (body["rel_owner_org_id"], body["rel_linked_org_id"])
            )

        return find


class FileApi(EntityApi):
    def __init__(self, client, entity, resolver, bundle_root: Path | None):
        super().__init__(client, entity, resolver)
        self.bundle_root = bundle_root

    def create(self, body, row, find, check_first):
        if check_first and (found := find()) is not None:
            return found, False
        assert self.bundle_root is not None
        _, fid, created = self.client.upload_file(
            self.bundle_root / row["body_path"], file_name=marked_file_name("file", row["source_id"], row["file_name"]),
            content_type=row.get("content_type") or "application/octet-stream",
            deal_id=body.get("deal_id"), org_id=body.get("org_id"), find_existing=find,
        )
        return fid, created

    def update(self, pid, changes):
        raise Unresolved("file_changed", "the attachment's body changed: roll back and reload the file")

    def delete(self, pid):
        self.client.delete_file(pid)

    def finder(self, row, body):
        def looks_alike(f) -> bool:
            return (f.name == row["file_name"]
                    and (row.get("size") is None or getattr(f, "file_size", None) in (None, row["size"]))
                    and bool((body.get("deal_id") and f.deal_id == body["deal_id"])
                             or (body.get("org_id") and f.org_id == body["org_id"])))

        def find() -> int | None:
            return self.claim(by_marker("file", row, self.client.list_files(), looks_alike))

        return find


def api_for(client, entity: str, resolver: Resolver, bundle_root: Path | None = None) -> EntityApi:
    if entity == "activity":
        return ActivityApi(client, entity, resolver)
    if entity == "note":
        return NoteApi(client, entity, resolver)
    if entity == "org_relationship":
        return RelationshipApi(client, entity, resolver)
    if entity == "file":
        return FileApi(client, entity, resolver, bundle_root)
    api = EntityApi(client, entity, resolver)
    api.searchable = True
    return api


def build_body(entity: str, resolver: Resolver, row: dict[str, Any]) -> dict[str, Any]:
    if entity == "org_relationship":
        return {"type": "parent", "rel_owner_org_id": resolver.ref(row["parent_ref"]),
                "rel_linked_org_id": resolver.ref(row["org_ref"])}
    body = resolver.body(entity, row)
    if entity in ("activity", "note"):  # the source marker, so the record can always be found again
        body[MARKER_FIELD[entity]] = with_marker(entity, row["source_id"], body.get(MARKER_FIELD[entity]))
    if entity == "note" and isinstance(body.get("add_time"), str):  # v1 wants "YYYY-MM-DD HH:MM:SS" UTC
        body["add_time"] = body["add_time"].replace("T", " ").rstrip("Z")[:19]
    if entity == "file":
        body = {k: body[k] for k in ("deal_id", "org_id", "person_id") if k in body}
    return body


def without_nulls(body: dict[str, Any]) -> dict[str, Any]:
    """A create sends only values; nulls stay in the stored body so an update can clear a field."""
    out = {k: v for k, v in body.items() if v is not None and k != "custom_fields"}
    custom = {k: v for k, v in (body.get("custom_fields") or {}).items() if v is not None}
    if custom:
        out["custom_fields"] = custom
    return out


def load_entity(
    client,
    store: LoadStore,
    resolver: Resolver,
    entity: str,
    rows: Iterable[dict[str, Any]],
    run_key: str,
    *,
    bundle_root: Path | None = None,
    progress: Progress | None = None,
    progress_every: float = 5.0,
) -> LoadResult:
    """Upsert every row; returns counts. Stops cleanly (result.stopped) when the daily budget is spent."""
    require_one_source_per_id(store.con, run_key)
    rows = list(rows)
    result = LoadResult(entity, total=len(rows))
    started, tokens0 = time.monotonic(), client.tokens_spent
    id_map = store.id_map(entity)
    pending = store.pending(entity)
    api = api_for(client, entity, resolver, bundle_root)
    api.taken = {m.pipedrive_id for m in id_map.values()}
    skips: list[dict[str, Any]] = []
    last_report = [time.monotonic()]

    def one(row: dict[str, Any]) -> None:
        sid = row["source_id"]
        t0 = client.thread_tokens()
        try:
            if row.get("decision") == "flag_too_large":
                raise Unresolved("file_too_large", f"{row.get('file_name')} is over the {file_limit_text()} limit: flagged for manual handling")
            body = build_body(entity, resolver, row)
            known = id_map.get(sid)
            if known is not None and known.state != "deleted":
                if known.content_hash == row["content_hash"]:
                    skips.append({"source_id": sid, "pipedrive_id": known.pipedrive_id})
                    result.skipped += 1
                    return
                changes = changed_fields(known.payload, body)
                if changes:
                    api.update(known.pipedrive_id, changes)
                store.record(run_key, entity, sid, "update", known.pipedrive_id, content_hash=row["content_hash"],
                             payload=body, before=before_values(known.payload, changes), after=changes,
                             tokens=client.thread_tokens() - t0)
                result.updated += 1
                return
            store.begin_create(entity, sid, run_key)
            pid, created = api.create(without_nulls(body), row, api.finder(row, body), check_first=sid in pending)
            store.record(run_key, entity, sid, "create" if created else "adopt", pid,
                         content_hash=row["content_hash"], payload=body, after=body, tokens=client.thread_tokens() - t0)
            resolver.id_maps.setdefault(entity, {})[sid] = pid
            api.taken.add(int(pid))
            if created:
                result.created += 1
            else:
                result.adopted += 1
        except Unresolved as e:
            result.set_aside.append({"source_id": sid, "reason_code": e.code, "message": str(e)})
        except DailyBudgetSpent:
            if sid not in pending and client.thread_tokens() == t0:
                store.cancel_create(entity, sid)  # refused before anything was sent: no lookup tomorrow
            raise
        except PipedriveError as e:
            if e.status not in REJECTED or (e.status == 404 and not isinstance(e, NotFound)):
                raise  # the account, the URL or the connection, not this record: stop, a re-run resumes
            result.set_aside.append({"source_id": sid, "reason_code": "rejected_by_pipedrive", "message": str(e)})
        finally:
            now = time.monotonic()
            if progress and now - last_report[0] >= progress_every:
                last_report[0] = now
                result.tokens = client.tokens_spent - tokens0
                result.seconds = now - started
                progress(result)

    try:
        client.map_concurrent(one, rows)
    except DailyBudgetSpent as e:
        result.stopped, result.resets_at = str(e), e.resets_at
    store.record_skips(run_key, entity, skips)
    if result.stopped is None:  # a stopped load has not reached every record yet
        store.replace_set_aside(run_key, entity, result.set_aside)
    result.tokens = client.tokens_spent - tokens0
    result.seconds = time.monotonic() - started
    return result
