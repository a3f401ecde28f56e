"""Puts a bundle together: output folder, sinks for every file, JSON files, manifest, mess log, zip."""

from __future__ import annotations

import json
import random
import shutil
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flitstack_dagster.core.errors import UserError
from flitstack_dagster.novo import columns
from flitstack_dagster.novo.generator import udfs
from flitstack_dagster.novo.generator.mess import Mess
from flitstack_dagster.novo.generator.options import GenOptions, export_id, format_instant
from flitstack_dagster.novo.generator.writers import BodyWriter, CsvSink, write_json_file

Log = Callable[[str], None]


@dataclass
class Summary:
    out: Path
    zip_path: Path | None
    mess_log: Path | None
    files: list[dict]
    bodies: int
    body_bytes: int
    mess_count: int
    mess_tally: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(f["rows"] for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f["bytes"] for f in self.files)


def mess_log_path(out: Path) -> Path:
    return out.with_name(out.name + ".mess.json")


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UserError(f"--timezone must be an IANA zone name such as America/Chicago, found {name!r}") from None


def prepare_out(out: Path, force: bool) -> Path:
    """An empty folder to write into; an existing bundle is replaced only with --force."""
    if out.exists():
        if not out.is_dir():
            raise UserError(f"{out} exists and is not a folder")
        if any(out.iterdir()):
            if not force:
                raise UserError(f"{out} is not empty; pass --force to replace the bundle in it")
            if not (out / "manifest.json").exists():
                raise UserError(f"{out} is not empty and holds no manifest.json; refusing to delete it")
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    stale = mess_log_path(out)
    if stale.exists():
        stale.unlink()
    return out


def headers(spec: columns.NovoFile) -> list[str]:
    extra = [u.column for u in udfs.for_entity(spec.udf_entity)] if spec.udf_entity else []
    return spec.headers + extra


def newline_for(seed: int) -> str:
    return "\r\n" if random.Random(f"{seed}:newline").random() < 0.5 else "\n"


class Bundle:
    """The sinks of one bundle and everything written around them."""

    def __init__(self, opts: GenOptions, root: Path, kind: str, exported_at: datetime,
                 changed_since: datetime | None, tz: ZoneInfo, tenant: str, encoding: str, date_order: str,
                 timezone_name: str, expected: dict[str, int], new_id: Callable[[str], str], log: Log):
        self.opts, self.root, self.kind, self.log = opts, root, kind, log
        self.exported_at, self.changed_since = exported_at, changed_since
        self.tenant, self.encoding, self.date_order, self.timezone_name = tenant, encoding, date_order, timezone_name
        self.mess = None
        if opts.mess > 0:
            self.mess = Mess(opts.mess, opts.seed, date_order, encoding, tz, expected, new_id,
                             opts.large_attachments, mess_log_path(root) if opts.mess_log else None)
        self.bodies = BodyWriter(root)
        newline = newline_for(opts.seed)
        self.sinks: dict[str, CsvSink] = {}
        for spec in columns.FILES:
            if spec.delta_only and kind != "delta":
                continue
            self.sinks[spec.entity] = CsvSink(
                root, spec.file, headers(spec), encoding, newline,
                process=self.mess.process if self.mess else None,
                after=self.bodies if spec.entity == "attachments" else None)

    def finish(self, rules: list, forms: list, started: float) -> Summary:
        entries = []
        for sink in self.sinks.values():
            entry = sink.close()
            entries.append(entry)
            self.log(f"  {entry['name']:<26} {entry['rows']:>10,} rows {entry['bytes']:>14,} bytes")
        for name, value in (("workflow_rules.json", rules), ("form_configurations.json", forms)):
            entry = write_json_file(self.root, name, value)
            entries.append(entry)
            self.log(f"  {name:<26} {len(value):>10,} items {entry['bytes']:>13,} bytes")
        manifest = {
            "format": "novo-work-order-export", "format_version": 1,
            "export_id": export_id(self.tenant, self.exported_at), "tenant": self.tenant,
            "exported_at": format_instant(self.exported_at), "kind": self.kind,
            "changed_since": format_instant(self.changed_since) if self.changed_since else None,
            "timezone": self.timezone_name, "encoding": self.encoding, "date_order": self.date_order,
            "files": entries,
        }
        (self.root / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n",
                                                 encoding="utf-8", newline="\n")
        self.log(f"  {'files/':<26} {self.bodies.count:>10,} bodies {self.bodies.bytes:>12,} bytes")
        mess_path = None
        if self.mess:
            self.mess.close()
            mess_path = mess_log_path(self.root) if self.opts.mess_log else None
        zip_path = write_zip(self.root, self.exported_at) if self.opts.zip else None
        return Summary(self.root, zip_path, mess_path, entries, self.bodies.count, self.bodies.bytes,
                       self.mess.total if self.mess else 0, dict(sorted(self.mess.tally.items())) if self.mess else {},
                       time.perf_counter() - started)


def write_zip(root: Path, exported_at: datetime) -> Path:
    """`DIR.zip` with the bundle's files at the zip's root, byte-identical for the same bundle."""
    target = root.with_name(root.name + ".zip")
    stamp = exported_at.astimezone(UTC).timetuple()[:6]
    paths = sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.relative_to(root).as_posix())
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for p in paths:
            info = zipfile.ZipInfo(p.relative_to(root).as_posix(), date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with open(p, "rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    return target
