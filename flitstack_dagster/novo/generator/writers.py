"""Streaming writers: CSV sinks that count records, bytes and SHA-256 as they write, and the bundle.

A sink never holds more than one chunk of rows: rows go through `csv.writer` into a small text
buffer, which is encoded (strictly: a character the bundle's encoding cannot hold is a bug), hashed
and written every `CHUNK` rows.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterable
from pathlib import Path

CHUNK = 2000


class CsvSink:
    def __init__(self, root: Path, name: str, headers: list[str], encoding: str, newline: str,
                 process: Callable[[CsvSink, dict], Iterable[dict]] | None = None,
                 after: Callable[[dict], None] | None = None):
        self.name = name
        self.path = root / name
        self.headers = headers
        self.encoding = encoding
        self._f = open(self.path, "wb")
        self._enc = codecs.getincrementalencoder(encoding)("strict")
        self._buf = io.StringIO()
        self._w = csv.writer(self._buf, lineterminator=newline)
        self._sha = hashlib.sha256()
        self.bytes = 0
        self.rows = 0
        self._pending = 0
        self._process = process
        self._after = after
        self._w.writerow(headers)
        self.closed = False

    def write(self, row: dict) -> None:
        if self._process is None:
            self._emit(row)
        else:
            for out in self._process(self, row):
                self._emit(out)

    def _emit(self, row: dict) -> None:
        get = row.get
        self._w.writerow([get(h, "") for h in self.headers])
        self.rows += 1
        if self._after is not None:
            self._after(row)
        self._pending += 1
        if self._pending >= CHUNK:
            self._flush()

    def _flush(self, final: bool = False) -> None:
        text = self._buf.getvalue()
        self._buf.seek(0)
        self._buf.truncate(0)
        self._pending = 0
        try:
            data = self._enc.encode(text, final)
        except UnicodeEncodeError as e:
            bad = e.object[e.start:e.end]
            raise ValueError(f"{self.name}: {bad!r} cannot be written in {self.encoding}") from None
        self._sha.update(data)
        self.bytes += len(data)
        self._f.write(data)

    def close(self) -> dict:
        if not self.closed:
            self._flush(final=True)
            self._f.close()
            self.closed = True
        return self.entry()

    def entry(self) -> dict:
        return {"name": self.name, "rows": self.rows, "bytes": self.bytes, "sha256": self._sha.hexdigest()}


def write_json_file(root: Path, name: str, value) -> dict:
    data = (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    (root / name).write_bytes(data)
    return {"name": name, "rows": 0, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


class BodyWriter:
    """Writes attachment bodies under `root/files/` — never anywhere else."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        self.files = (self.root / "files").resolve()
        self.count = 0
        self.bytes = 0
        self._made: set[str] = set()

    def __call__(self, row: dict) -> None:
        rel = row.get("_body_path")
        data = row.get("_body")
        chunks = row.get("_body_chunks")
        if not rel or (data is None and chunks is None):
            return
        target = (self.root / rel).resolve()
        if self.files not in target.parents:
            raise ValueError(f"refusing to write an attachment body outside the bundle: {rel!r}")
        parent = str(target.parent)
        if parent not in self._made:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(parent)
        with open(target, "wb") as out:
            if chunks is not None:
                for piece in chunks():
                    out.write(piece)
                    self.bytes += len(piece)
            else:
                out.write(data)
                self.bytes += len(data)
        self.count += 1
