"""The records of the large entity kinds, kept in the database instead of memory.

A `RowTable` answers like the dict of one kind's records by id string, but reads each record from the
database when a request reaches it and keeps only the records the current request reached: the
handlers change those dicts in place and the request's commit writes back the ones that changed. So
the sandbox's memory does not grow with its records, and a city-sized account (a million records)
starts in a moment.

Every row also carries the columns the routes look records up by (links, stage, update time, deleted)
and the searchable texts go to `texts`, so lists, counts and field searches are index lookups. The
entity searches match any part of a text, whatever its case: each searchable record's texts, case-folded,
are one document of a trigram full-text index (`search_<kind>`, rowid = record id), which gives the
candidates the search then scores exactly as before.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

# the kinds that can grow with the migrated data; the rest (pipelines, stages, ...) stay in memory
ROW_KINDS = ("organizations", "persons", "deals", "activities", "notes", "files")
# columns a route filters on (equality): each has a partial index
LINK_COLUMNS = ("org_id", "person_id", "deal_id", "stage_id", "pipeline_id")
# what a field search looks records up by: the name and every custom field value
NAME_KEY = {"organizations": "name", "persons": "name", "deals": "title"}
# the kinds the entity searches read (notes: a record's notes are searched with it)
SEARCH_KINDS = ("organizations", "persons", "deals", "notes")
# a trigram index finds only terms of three characters or more; shorter ones walk the kind
MIN_INDEXED_TERM = 3

SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL, id INTEGER NOT NULL, created INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (kind, id));
CREATE INDEX IF NOT EXISTS records_created ON records (created);
CREATE TABLE IF NOT EXISTS texts (kind TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL,
    id INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS texts_by_value ON texts (kind, field, value, id);
CREATE INDEX IF NOT EXISTS texts_record ON texts (kind, id);
"""
# added to a database made before the records had lookup columns; filled from the bodies once
_COLUMNS = {"deleted": "INTEGER NOT NULL DEFAULT 0", "update_time": "TEXT NOT NULL DEFAULT ''",
            **{c: "INTEGER" for c in LINK_COLUMNS}}
# each ends with the id, so one index both finds a link's records and gives them in id order (without
# it SQLite walks the whole kind in id order instead)
_INDEXES = [f"CREATE INDEX IF NOT EXISTS records_by_{c} ON records (kind, {c}, id) WHERE {c} IS NOT NULL"
            for c in LINK_COLUMNS] + ["CREATE INDEX IF NOT EXISTS records_updated ON records (kind, update_time, id)"]
_OLD_INDEXES = [f"records_{c}" for c in LINK_COLUMNS] + ["texts_value"]
# case-sensitive: the documents and the terms are case-folded in Python, as the search compares them
_SEARCH_TABLES = {k: f"CREATE VIRTUAL TABLE search_{k} USING fts5(doc, tokenize='trigram case_sensitive 1')"
                  for k in SEARCH_KINDS}


def upgrade(db: sqlite3.Connection) -> None:
    """Give an older database the lookup columns, their indexes and the searchable texts."""
    have = {row[1] for row in db.execute("PRAGMA table_info(records)")}
    missing = [c for c in _COLUMNS if c not in have]
    for c in missing:
        db.execute(f"ALTER TABLE records ADD COLUMN {c} {_COLUMNS[c]}")
    for name in _OLD_INDEXES:
        db.execute(f"DROP INDEX IF EXISTS {name}")
    for sql in _INDEXES:
        db.execute(sql)
    if missing:
        _backfill(db)
    _add_search_tables(db)


def _add_search_tables(db: sqlite3.Connection) -> None:
    """Create the search indexes a database lacks, filled from its records."""
    have = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for kind, ddl in _SEARCH_TABLES.items():
        if f"search_{kind}" in have:
            continue
        db.execute("BEGIN IMMEDIATE")
        db.execute(ddl)
        for rid, body in db.execute("SELECT id, body FROM records WHERE kind = ?", (kind,)).fetchall():
            doc = search_doc(kind, json.loads(body))
            if doc:
                db.execute(f"INSERT INTO search_{kind} (rowid, doc) VALUES (?, ?)", (rid, doc))
        db.execute("COMMIT")


def _str_values(values: Any) -> list[str]:
    return [str(x.get("value") if isinstance(x, dict) else x) for x in values or [] if x is not None] \
        if isinstance(values, list) else []


def search_doc(kind: str, rec: dict) -> str:
    """Every text an entity search (or a field search in the middle of a value) can match in the record,
    case-folded, one a line; '' when none. A superset of what the searches compare: they check each
    candidate the index gives against the record itself."""
    if kind == "notes":
        parts = [rec["content"]] if isinstance(rec.get("content"), str) else []
    elif kind in NAME_KEY:
        parts = text_values(rec.get(NAME_KEY[kind])) + _str_values(rec.get("emails")) + _str_values(rec.get("phones"))
        parts += text_values(rec.get("address"))
        for v in (rec.get("custom_fields") or {}).values():
            if v is not None:
                parts += text_values(v) + [str(v.get("value")) if isinstance(v, dict) else str(v)]
    else:
        return ""
    return "\n".join(dict.fromkeys(p.casefold() for p in parts))


def write_search_doc(db: sqlite3.Connection, kind: str, rid: int, rec: dict | None, before: dict | None) -> None:
    """Keep the record's search document in step with the record (None: deleted or not there before)."""
    if kind not in SEARCH_KINDS:
        return
    old = search_doc(kind, before) if before is not None else ""
    new = search_doc(kind, rec) if rec is not None else ""
    if old == new:
        return
    db.execute(f"DELETE FROM search_{kind} WHERE rowid = ?", (rid,))
    if new:
        db.execute(f"INSERT INTO search_{kind} (rowid, doc) VALUES (?, ?)", (rid, new))


def wipe_search(db: sqlite3.Connection) -> None:
    for kind in SEARCH_KINDS:
        db.execute(f"DELETE FROM search_{kind}")


def fts_phrase(folded: str) -> str:
    """A case-folded term as an FTS5 phrase: inside double quotes nothing is an operator."""
    return '"' + folded.replace('"', '""') + '"'


def _backfill(db: sqlite3.Connection) -> None:
    kinds = ",".join("?" * len(ROW_KINDS))
    rows = db.execute(f"SELECT kind, id, body FROM records WHERE kind IN ({kinds})", ROW_KINDS).fetchall()
    db.execute("BEGIN IMMEDIATE")
    for kind, rid, body in rows:
        rec = json.loads(body)
        db.execute(f"UPDATE records SET {', '.join(c + ' = ?' for c in _COLUMNS)} WHERE kind = ? AND id = ?",
                   (*columns(rec), kind, rid))
        db.executemany("INSERT INTO texts (kind, field, value, id) VALUES (?, ?, ?, ?)",
                       [(kind, f, v, rid) for f, v in texts(kind, rec)])
    db.execute("COMMIT")


def _int_or_none(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63 else None


def columns(rec: dict) -> tuple:
    """The lookup columns of a record, in `_COLUMNS` order."""
    ut = rec.get("update_time")
    return (1 if rec.get("is_deleted") else 0, ut if isinstance(ut, str) else "",
            *(_int_or_none(rec.get(c)) for c in LINK_COLUMNS))


def text_values(v: Any) -> list[str]:
    """A stored value as the field search compares it (an address or money by its value)."""
    if v is None:
        return []
    if isinstance(v, dict):
        return [str(v.get("value"))]
    if isinstance(v, list):
        return [str(x.get("value") if isinstance(x, dict) else x) for x in v]
    return [str(v)]


def texts(kind: str, rec: dict) -> list[tuple[str, str]]:
    """(field, value) of the record's name and custom field values, for the field search's index."""
    if kind not in NAME_KEY:
        return []
    name = NAME_KEY[kind]
    out = [(name, v) for v in text_values(rec.get(name))]
    for key, v in (rec.get("custom_fields") or {}).items():
        out += [(key, t) for t in text_values(v)]
    return list(dict.fromkeys(out))


def dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class RowTable:
    """One large kind's records by id string, read from the database on demand (see the module doc).

    A record a request reaches through `get()` or item access is the same dict until the request
    commits; iterating (`values()`) reads the rows afresh and is for reading only."""

    def __init__(self, db: sqlite3.Connection, kind: str, on_create) -> None:
        self._db = db
        self.kind = kind
        self._on_create = on_create  # called with the id string of each new record
        self._reached: dict[str, dict | None] = {}  # None: deleted by this request
        self._loaded: dict[str, str | None] = {}  # the body as read, to write back only what changed

    # -- reading one -------------------------------------------------------------------------------------
    def _read(self, key: str) -> dict | None:
        if key in self._reached:
            return self._reached[key]
        try:
            rid = int(key)
        except (TypeError, ValueError):
            return None
        if not -(2**63) <= rid < 2**63:
            return None
        row = self._db.execute("SELECT body FROM records WHERE kind = ? AND id = ?", (self.kind, rid)).fetchone()
        body = row[0] if row else None
        if body is None:
            return None
        rec = json.loads(body)
        self._reached[key] = rec
        self._loaded[key] = body
        return rec

    def get(self, key: Any, default: Any = None) -> Any:
        rec = self._read(str(key))
        return default if rec is None else rec

    def __getitem__(self, key: Any) -> dict:
        rec = self._read(str(key))
        if rec is None:
            raise KeyError(key)
        return rec

    def __contains__(self, key: Any) -> bool:
        return self._read(str(key)) is not None

    # -- writing -----------------------------------------------------------------------------------------
    def __setitem__(self, key: Any, value: dict) -> None:
        key = str(key)
        if self._read(key) is None:
            self._on_create(key)
            self._loaded.setdefault(key, None)
        self._reached[key] = value

    def pop(self, key: Any, *default: Any) -> Any:
        key = str(key)
        rec = self._read(key)
        if rec is None:
            if default:
                return default[0]
            raise KeyError(key)
        self._reached[key] = None
        return rec

    def __delitem__(self, key: Any) -> None:
        self.pop(key)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def touch(self, key: Any) -> None:
        self._read(str(key))

    def changes(self) -> Iterator[tuple[int, dict | None, str | None, str | None]]:
        """(id, record or None when deleted, its body, the body it had) of every reached record that
        changed."""
        for key, rec in self._reached.items():
            body = None if rec is None else dump(rec)
            before = self._loaded.get(key)
            if body != before:
                yield int(key), rec, body, before

    def settle(self) -> None:
        """The request is over: forget what it reached."""
        self._reached.clear()
        self._loaded.clear()

    # -- reading many ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._db.execute("SELECT count(*) FROM records WHERE kind = ?", (self.kind,)).fetchone()[0]

    def values(self) -> Iterator[dict]:
        return self.select(deleted=None)

    def items(self) -> Iterator[tuple[str, dict]]:
        return ((str(r["id"]), r) for r in self.values())

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self.items())

    def select(self, *, deleted: bool | None = False, eq: dict[str, int] | None = None,
               ids: list[int] | None = None, order: str = "id", descending: bool = False,
               after: list | None = None, limit: int | None = None, offset: int = 0) -> Iterator[dict]:
        """Records by index, lazily: `deleted` False (live only), True (deleted only) or None (all);
        `eq` link column -> value; `ids`; sorted by `order` ("id", "update_time" or any body key, the
        last not indexed) then id, starting after the sort key `after` (a cursor's)."""
        sql, args = self._sql(deleted, eq or {}, ids, order, descending, after, limit, offset)
        for rid, body in self._db.execute(sql, args):
            key = str(rid)
            yield self._reached[key] if self._reached.get(key) is not None else json.loads(body)

    def plan(self, **select: Any) -> str:
        """How SQLite will run `select(**select)` (EXPLAIN QUERY PLAN), for tests."""
        sql, args = self._sql(select.get("deleted", False), select.get("eq") or {}, select.get("ids"),
                              select.get("order", "id"), select.get("descending", False), select.get("after"),
                              select.get("limit"), select.get("offset", 0))
        return " ".join(str(row[-1]) for row in self._db.execute("EXPLAIN QUERY PLAN " + sql, args))

    def _sql(self, deleted, eq, ids, order, descending, after, limit, offset) -> tuple[str, list]:
        where, args = ["kind = ?"], [self.kind]
        if deleted is not None:
            where.append("deleted = ?")
            args.append(1 if deleted else 0)
        for col, v in eq.items():
            if col not in LINK_COLUMNS:
                raise ValueError(f"no lookup column {col}")
            where.append(f"{col} = ?")
            args.append(v)
        if ids is not None:
            where.append(f"id IN ({','.join('?' * len(ids))})")
            args += list(ids)
        sort = _sort_expr(order)
        if eq and order != "id":
            sort = "+" + sort  # a link has few records: find them by its index and sort them, not the whole kind
        cmp = "<" if descending else ">"
        if after is not None:
            if order == "id":
                where.append(f"id {cmp} ?")
                args.append(after[0])
            else:
                where.append(f"({sort}, id) {cmp} (?, ?)")
                args += [after[0], after[1]]
        direction = "DESC" if descending else "ASC"
        by = "id" if order == "id" else f"{sort} {direction}, id"
        sql = f"SELECT id, body FROM records WHERE {' AND '.join(where)} ORDER BY {by} {direction}"
        if limit is not None or offset:
            sql += f" LIMIT {-1 if limit is None else int(limit)} OFFSET {int(offset)}"
        return sql, args

    def count(self, **eq: int) -> int:
        """Live records whose link columns equal `eq`."""
        where = " AND ".join(f"{c} = ?" for c in eq)
        for c in eq:
            if c not in LINK_COLUMNS:
                raise ValueError(f"no lookup column {c}")
        sql = "SELECT count(*) FROM records WHERE kind = ? AND deleted = 0" + (f" AND {where}" if eq else "")
        return self._db.execute(sql, [self.kind, *eq.values()]).fetchone()[0]

    def ids_with_text(self, field: str, value: str, prefix: bool = False) -> list[int]:
        """Ids of the records whose `field` (name key or custom field key) has `value` (or starts with
        it), deleted ones included: a candidate list the caller checks against the records."""
        # sorted here, not in SQL: an ORDER BY id would make SQLite walk every text of the kind in id order
        if prefix:
            rows = self._db.execute("SELECT id FROM texts WHERE kind = ? AND field = ? AND value >= ? AND value < ?",
                                    (self.kind, field, value, value + "\U0010ffff"))
        else:
            rows = self._db.execute("SELECT id FROM texts WHERE kind = ? AND field = ? AND value = ?",
                                    (self.kind, field, value))
        return sorted({r[0] for r in rows})

    def ids_containing(self, term: str) -> list[int] | None:
        """Ids of the records (deleted ones included) one of whose searchable texts may contain `term`
        whatever the case, by the search index; None when the term is too short for it (walk instead)."""
        folded = term.casefold()
        if self.kind not in SEARCH_KINDS or len(folded) < MIN_INDEXED_TERM:
            return None
        rows = self._db.execute(f"SELECT rowid FROM search_{self.kind} WHERE search_{self.kind} MATCH ?",
                                (fts_phrase(folded),))
        return sorted(r[0] for r in rows)

    def linked(self, col: str, ids: list[int]) -> Iterator[dict]:
        """Live records whose link column `col` is one of `ids`, in id order."""
        if col not in LINK_COLUMNS:
            raise ValueError(f"no lookup column {col}")
        found = []
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            found += self._db.execute(f"SELECT id, body FROM records WHERE kind = ? AND deleted = 0 AND {col} IN "
                                      f"({','.join('?' * len(chunk))})", (self.kind, *chunk)).fetchall()
        for rid, body in sorted(found):
            key = str(rid)
            yield self._reached[key] if self._reached.get(key) is not None else json.loads(body)

    def search_plan(self, term: str) -> str:
        """How SQLite runs `ids_containing(term)` (EXPLAIN QUERY PLAN), for tests."""
        sql = f"SELECT rowid FROM search_{self.kind} WHERE search_{self.kind} MATCH ?"
        return " ".join(str(row[-1]) for row in self._db.execute("EXPLAIN QUERY PLAN " + sql,
                                                                  (fts_phrase(term.casefold()),)))


def _sort_expr(order: str) -> str:
    if order in ("id", "update_time"):
        return order
    if not order.replace("_", "").isalnum():
        raise ValueError(f"cannot sort by {order!r}")
    return f"coalesce(json_extract(body, '$.{order}'), '')"
