"""`flitstack generate`: spec-conformant, deterministic, messy on request, streaming deltas."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from flitstack_dagster.cli import main
from flitstack_dagster.novo import columns
from flitstack_dagster.novo.bundle import open_bundle
from flitstack_dagster.novo.generator.mess import PROBLEMS

N = 2000


def generate(out: Path, *args: str) -> Path:
    assert main(["generate", "--out", str(out), *args]) == 0
    return out


def manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text(encoding="utf-8"))


def read(root: Path, name: str) -> list[dict]:
    enc = manifest(root)["encoding"]
    with open(root / name, encoding=enc, newline="") as fh:
        return list(csv.DictReader(fh))


def header(root: Path, name: str) -> list[str]:
    enc = manifest(root)["encoding"]
    with open(root / name, encoding=enc, newline="") as fh:
        return next(csv.reader(fh))


_SLASH = re.compile(r"(\d{2})/(\d{2})/(\d{4})(?: (\d{1,2}):(\d{2})(?::(\d{2}))?(?: (AM|PM))?)?$")


def parse_dt(value: str, order: str, tz: ZoneInfo) -> datetime:
    m = _SLASH.match(value)
    if m:
        a, b, y, hh, mm, ss, ampm = m.groups()
        month, day = (int(a), int(b)) if order == "MDY" else (int(b), int(a))
        h = int(hh or 0)
        if ampm:
            h = h % 12 + (12 if ampm == "PM" else 0)
        dt = datetime(int(y), month, day, h, int(mm or 0), int(ss or 0))
    else:
        dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo else dt.replace(tzinfo=tz)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("clean") / "bundle", "--work-orders", str(N))


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("messy") / "bundle", "--work-orders", str(N), "--mess", "0.05")


def test_same_seed_and_options_give_byte_identical_bundles(tmp_path):
    args = ("--work-orders", "300", "--mess", "0.05", "--zip", "--seed", "11")
    a, b = generate(tmp_path / "a", *args), generate(tmp_path / "b", *args)
    files_a = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) > 17
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    assert (tmp_path / "a.mess.json").read_bytes() == (tmp_path / "b.mess.json").read_bytes()
    c = generate(tmp_path / "c", "--work-orders", "300", "--mess", "0.05", "--seed", "12")
    assert (c / "work_orders.csv").read_bytes() != (a / "work_orders.csv").read_bytes()


@pytest.mark.slow
def test_manifest_rows_bytes_and_hashes_match_the_files(clean):
    m = manifest(clean)
    assert m["format"] == "novo-work-order-export" and m["format_version"] == 1
    assert m["export_id"] == "springfield-20261120T070000Z"
    assert (m["tenant"], m["exported_at"], m["kind"], m["changed_since"]) == (
        "City of Springfield", "2026-11-20T07:00:00Z", "full", None)
    assert (m["timezone"], m["encoding"], m["date_order"]) == ("America/Chicago", "utf-8", "MDY")
    listed = {e["name"]: e for e in m["files"]}
    on_disk = {p.name for p in clean.iterdir() if p.suffix in (".csv", ".json") and p.name != "manifest.json"}
    assert set(listed) == on_disk
    expected = {f.file for f in columns.FILES if not f.delta_only} | set(columns.JSON_FILES)
    assert set(listed) == expected
    for name, e in listed.items():
        data = (clean / name).read_bytes()
        assert e["bytes"] == len(data), name
        assert e["sha256"] == hashlib.sha256(data).hexdigest(), name
        if name.endswith(".json"):
            assert e["rows"] == 0
            assert isinstance(json.loads(data), list)
        else:
            records = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
            assert e["rows"] == len(records) - 1, name
    assert listed["work_orders.csv"]["rows"] == N
    # multi-line quoted values exist, so records != lines
    assert listed["work_orders.csv"]["rows"] < (clean / "work_orders.csv").read_bytes().count(b"\n") - 1


def test_every_standard_header_and_declared_udf_columns(clean):
    udfs = read(clean, "user_defined_fields.csv")
    assert header(clean, "user_defined_fields.csv") == columns.BY_FILE["user_defined_fields.csv"].headers
    for entity in columns.UDF_ENTITIES:
        types = {u["Data Type"] for u in udfs if u["Entity"] == entity}
        assert types == set(columns.UDF_DATA_TYPES), entity
    for spec in columns.FILES:
        if spec.delta_only:
            assert not (clean / spec.file).exists()
            continue
        head = header(clean, spec.file)
        assert head[: len(spec.headers)] == spec.headers, spec.file
        declared = [u["Column"] for u in udfs if u["Entity"] == spec.udf_entity]
        assert head[len(spec.headers):] == declared, spec.file
    picks = {u["Column"]: set(u["Choices"].split("|")) for u in udfs
             if u["Entity"] == "Work Order" and u["Data Type"] == "Pick List"}
    wos = read(clean, "work_orders.csv")
    for col, choices in picks.items():
        assert {w[col] for w in wos} - {""} <= choices  # clean data stays inside the pick list


def test_every_status_priority_request_type_source_and_recurrence_style(clean):
    wos = read(clean, "work_orders.csv")
    statuses = {w["Status"] for w in wos}
    assert set(columns.WO_STATUSES) <= statuses
    assert {"Awaiting Parts", "Pending Approval"} <= statuses
    assert {w["Priority"] for w in wos} == set(columns.WO_PRIORITIES) | {""}
    assert {w["Request Type"] for w in wos} == set(columns.REQUEST_TYPES)
    assert {w["Source"] for w in wos} == {"Web", "Email", "Phone", "Walk-in"}
    pms = read(clean, "pm_schedules.csv")
    rules = {p["Recurrence Rule"] for p in pms}
    assert "FREQ=MONTHLY;BYDAY=1MO" in rules and "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH" in rules
    assert {"Every 2 weeks on Monday", "Monthly on day 15", "Every 3 months"} <= rules
    assert any(p["Trigger"] == "Date" and not p["Recurrence Rule"] and p["Frequency"] and p["Every"] for p in pms)
    meters = [p for p in pms if p["Trigger"] == "Meter"]
    assert meters and all(p["Meter Name"] and p["Meter Interval"] for p in meters)
    assert any("\n" in p["Procedure"] for p in pms)
    pm_ids = {p["PM ID"] for p in pms}
    assert any(w["PM Schedule ID"] in pm_ids for w in wos)
    hist = read(clean, "pm_history.csv")
    assert any(h["WO Number"] for h in hist) and {h["PM ID"] for h in hist} <= pm_ids


def test_asset_trees_one_to_five_levels_and_entity_scale(clean):
    assets = read(clean, "assets.csv")
    assert len(assets) == N // 20
    parent = {a["Asset ID"]: a["Parent Asset ID"] for a in assets}
    assert all(p in parent for p in parent.values() if p)  # no orphans without --mess

    def depth(a: str) -> int:
        d = 1
        while parent[a]:
            a, d = parent[a], d + 1
            assert d < 50, "cycle"
        return d

    assert {depth(a) for a in parent} == {1, 2, 3, 4, 5}
    assert any(a["Account ID"] and not a["Parent Asset ID"] for a in assets)  # a customer's tree
    assert any(not a["Account ID"] and not a["Parent Asset ID"] for a in assets)  # standalone
    assert {a["Asset Class"] for a in assets} == set(columns.ASSET_CLASSES)
    m = {e["name"]: e["rows"] for e in manifest(clean)["files"]}
    assert m["contacts.csv"] == 25 and m["accounts.csv"] == 20 and m["pm_schedules.csv"] == 10
    assert m["inventory.csv"] == N // 50
    assert 2.5 * N <= m["labor.csv"] <= 3.5 * N
    assert 3.2 * N <= m["status_log.csv"] <= 4.8 * N
    assert 0.7 * N <= m["notes.csv"] <= 1.3 * N
    assert 0.7 * N <= m["parts_used.csv"] <= 1.3 * N
    assert 0.06 * N <= m["attachments.csv"] <= 0.15 * N


def test_people_accounts_and_activity_look_real(clean):
    contacts = read(clean, "contacts.csv")
    assert {c["Role"] for c in contacts} == set(columns.CONTACT_ROLES)
    assert all(c["First Name"] or c["Last Name"] for c in contacts)
    techs = [c for c in contacts if c["Role"] != "Requester"]
    assert techs and all(c["Hourly Rate"] for c in techs)
    emails = [c["Email"] for c in contacts if c["Email"]]
    assert any(e != e.strip() or e != e.lower() for e in emails)  # padded or upper case
    assert len({e.strip().lower() for e in emails}) < len(emails)  # shared by two contacts
    accounts = read(clean, "accounts.csv")
    assert {a["Account Type"] for a in accounts} == set(columns.ACCOUNT_TYPES)
    names = Counter(a["Account Name"] for a in accounts)
    assert names.most_common(1)[0][1] >= 2
    depts = read(clean, "departments.csv")
    assert {"Public Works", "Utilities", "Facilities", "Parks & Recreation", "Water", "Fleet"} <= {
        d["Department Name"] for d in depts}
    assert {d["Department Type"] for d in depts} == {"Internal", "Customer"}
    notes = read(clean, "notes.csv")
    assert {n["Entry Type"] for n in notes} == {"Note", "Call", "Email", "Meeting"}
    assert any("<script>" in n["Body"] for n in notes)
    assert any(n["Asset ID"] and not n["WO Number"] for n in notes)
    assert all(bool(n["Asset ID"]) != bool(n["WO Number"]) for n in notes)


def test_status_log_chains_end_at_the_work_order_status(clean):
    wos = {w["WO Number"]: w["Status"] for w in read(clean, "work_orders.csv")}
    chains = defaultdict(list)
    for e in read(clean, "status_log.csv"):
        chains[e["WO Number"]].append(e)
    assert set(chains) == set(wos)
    for wo, chain in chains.items():
        assert chain[0]["From Status"] == ""
        for prev, cur in zip(chain, chain[1:]):
            assert cur["From Status"] == prev["To Status"], wo
        assert chain[-1]["To Status"] == wos[wo], wo


def test_values_use_the_allowed_mixed_forms(clean):
    tz = ZoneInfo("America/Chicago")
    wos = read(clean, "work_orders.csv")
    forms = Counter()
    for w in wos:
        v = w["Date Requested"]
        parse_dt(v, "MDY", tz)
        forms["slash" if "/" in v else "Z" if v.endswith("Z") else "offset" if re.search(r"[+-]\d\d:\d\d$", v)
              else "12h" if v.endswith("M") else "iso"] += 1
        for col in ("Due Date", "Date Scheduled"):
            if w[col]:
                assert re.fullmatch(r"\d{2}/\d{2}/\d{4}|\d{4}-\d{2}-\d{2}", w[col]), w[col]
    assert len(forms) >= 3
    assert any(v.endswith("M") for w in wos for v in (w["Date Requested"], w["Date Modified"]))
    money = [p["Unit Cost"] for p in read(clean, "parts_used.csv")] + [
        r["Rate"] for r in read(clean, "labor.csv")]
    assert any(m.startswith("$") for m in money) and any(re.fullmatch(r"\d+\.\d\d", m) for m in money)
    assert any(m.startswith("(") or m.startswith("-") for m in money)
    assert all(re.fullmatch(r"\$?\d{1,3}(,\d{3})*\.\d\d|\d+\.\d\d|\(\d[\d,]*\.\d\d\)|-\d+\.\d\d", m) for m in money)
    yes = {a["Active"] for a in read(clean, "contacts.csv")}
    assert len(yes) >= 3


def test_attachment_bodies_exist_match_and_some_names_are_not_ascii(clean):
    atts = read(clean, "attachments.csv")
    assert {a["Parent Type"] for a in atts} == {"Work Order", "Asset"}
    for a in atts:
        path = clean / a["Bundle Path"]
        assert a["Bundle Path"] == f"files/{a['Parent ID']}/{a['File Name']}"
        data = path.read_bytes()
        assert len(data) == int(a["Size"]) and hashlib.sha256(data).hexdigest() == a["SHA-256"]
        magic = {"image/png": b"\x89PNG", "application/pdf": b"%PDF", "text/plain": b""}[a["Content Type"]]
        assert data.startswith(magic)
    assert any(not a["File Name"].isascii() for a in atts)
    assert not any(".." in a["Bundle Path"] or a["Bundle Path"].startswith("/") for a in atts)
    assert not (clean.parent / "bundle.mess.json").exists()


@pytest.mark.slow
def test_mess_injects_every_problem_at_the_rate_and_logs_it(messy, capsys):
    log_path = messy.with_name("bundle.mess.json")
    assert not (messy / "bundle.mess.json").exists()  # beside the bundle, not inside
    log = json.loads(log_path.read_text(encoding="utf-8"))
    assert all(set(e) == {"problem", "file", "id", "column", "value", "row_number"} for e in log)
    seen = Counter(e["problem"] for e in log)
    assert set(seen) == set(PROBLEMS) - {"attachment_oversize"}  # oversize needs --large-attachments
    per_file = Counter((e["problem"], e["file"]) for e in log)
    m = {e["name"]: e["rows"] for e in manifest(messy)["files"]}
    # 5 % of the rows, each problem: work orders are not duplicated, so their count is exact-ish
    assert abs(per_file[("unknown_status", "work_orders.csv")] - 0.05 * N) <= 2
    assert abs(per_file[("orphan_reference", "labor.csv")] - 0.05 * m["labor.csv"]) <= 0.01 * m["labor.csv"]
    # the log tells the truth: the logged value is in the file at that row and column
    tables = {}
    hits = misses = 0
    for e in log:
        if e["problem"] in ("long_text", "deep_hierarchy") or not e["value"]:
            continue
        if e["file"] not in tables:
            tables[e["file"]] = read(messy, e["file"])
        rows = tables[e["file"]]
        cell = rows[e["row_number"] - 1].get(e["column"], "")
        if e["value"] in cell:
            hits += 1
        else:
            misses += 1  # a later problem overwrote the same cell
    assert hits > 0 and misses <= 0.03 * (hits + misses)
    # duplicate IDs really are duplicates, with a different Date Modified
    wos = read(messy, "work_orders.csv")
    dups = [e for e in log if e["problem"] == "duplicate_id" and e["file"] == "work_orders.csv"]
    assert dups
    for e in dups:
        same = [w for w in wos if w["WO Number"] == e["id"]]
        assert len(same) == 2 and same[0]["Date Modified"] != same[1]["Date Modified"]
        assert wos[e["row_number"] - 1]["WO Number"] == e["id"]
    # hostile paths only here, and nothing written for them
    atts = read(messy, "attachments.csv")
    hostile = [a for a in atts if ".." in a["Bundle Path"] or a["Bundle Path"].startswith("/")
               or ":" in a["Bundle Path"]]
    assert hostile
    for e in log:
        if e["problem"] == "attachment_missing_body":
            assert not (messy / e["value"]).exists()
        if e["problem"] == "attachment_size_mismatch":
            a = atts[e["row_number"] - 1]
            assert (messy / a["Bundle Path"]).stat().st_size != int(a["Size"])
    # long descriptions: tens of KB, multi-line
    longest = max(wos, key=lambda w: len(w["Description"]))["Description"]
    assert len(longest) >= 20_000 and longest.count("\n") > 10
    # deep trees and cycles
    parent = {a["Asset ID"]: a["Parent Asset ID"] for a in read(messy, "assets.csv")}
    assert any(a == p or parent.get(p) == a for a, p in parent.items())

    def depth(a: str) -> int:
        d, seen_ = 1, {a}
        while parent.get(a) and parent[a] not in seen_:
            a = parent[a]
            seen_.add(a)
            d += 1
        return d

    assert max(depth(a) for a in parent) >= 6


def test_cli_prints_progress_and_summary(tmp_path, capsys):
    generate(tmp_path / "s", "--work-orders", "100", "--mess", "0.1", "--no-mess-log")
    out = capsys.readouterr().out
    assert re.search(r"work_orders\.csv +1\d\d rows", out) and "files/" in out
    assert re.search(r"wrote 17 files, [\d,]+ records", out)
    assert re.search(r"mess: [\d,]+ injections", out)
    assert not (tmp_path / "s.mess.json").exists()
    assert main(["generate", "--out", str(tmp_path / "s"), "--work-orders", "10"]) == 2  # not empty


def test_cp1252_bundle_with_dmy_dates(tmp_path):
    root = generate(tmp_path / "w", "--work-orders", "400", "--encoding", "cp1252", "--date-order", "DMY",
                    "--mess", "0.05")
    m = manifest(root)
    assert (m["encoding"], m["date_order"]) == ("cp1252", "DMY")
    non_ascii = False
    for e in m["files"]:
        if e["name"].endswith(".csv"):
            text = (root / e["name"]).read_bytes().decode("cp1252")
            non_ascii |= not text.isascii()
    assert non_ascii
    raw = (root / "work_orders.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    firsts, seconds = [], []
    for w in read(root, "work_orders.csv") + read(root, "labor.csv"):
        for col in ("Due Date", "Work Date", "Date Requested"):
            mm = re.match(r"(\d{2})/(\d{2})/(\d{4})", w.get(col) or "")
            if mm:
                firsts.append(int(mm.group(1)))
                seconds.append(int(mm.group(2)))
    assert max(firsts) > 12 and max(seconds) <= 12


def test_utf8_sig_bundle_starts_with_a_bom(tmp_path):
    root = generate(tmp_path / "b", "--work-orders", "50", "--encoding", "utf-8-sig")
    for e in manifest(root)["files"]:
        if e["name"].endswith(".csv"):
            assert (root / e["name"]).read_bytes().startswith(b"\xef\xbb\xbf"), e["name"]


def test_large_attachment_only_on_request(tmp_path):
    root = generate(tmp_path / "big", "--work-orders", "200", "--mess", "0.05", "--large-attachments")
    log = json.loads((tmp_path / "big.mess.json").read_text(encoding="utf-8"))
    big = [e for e in log if e["problem"] == "attachment_oversize"]
    assert 1 <= len(big) <= 3
    atts = {a["Attachment ID"]: a for a in read(root, "attachments.csv")}
    a = atts[big[0]["id"]]
    body = root / a["Bundle Path"]
    assert int(a["Size"]) > 25 * 1024 * 1024 and body.stat().st_size == int(a["Size"])
    h = hashlib.sha256()
    with open(body, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    assert h.hexdigest() == a["SHA-256"]


def test_delta_has_only_changed_and_new_records_and_deletions(clean, tmp_path):
    delta = generate(tmp_path / "d", "--delta-from", str(clean))
    m, base_m = manifest(delta), manifest(clean)
    assert m["kind"] == "delta" and m["changed_since"] == base_m["exported_at"]
    assert m["export_id"] == "springfield-20261127T070000Z"
    assert {e["name"] for e in m["files"]} == {f.file for f in columns.FILES} | set(columns.JSON_FILES)
    tz, since = ZoneInfo(m["timezone"]), datetime.fromisoformat(m["changed_since"])
    exported = datetime.fromisoformat(m["exported_at"])
    for spec in columns.FILES:
        col = spec.modified_column
        if not col or spec.file == "deleted.csv":
            continue
        for row in read(delta, spec.file):
            assert since <= parse_dt(row[col], m["date_order"], tz) <= exported, (spec.file, row[col])
    deleted = read(delta, "deleted.csv")
    assert {d["Entity"] for d in deleted} >= {"Work Order", "Asset", "Contact", "Account", "Attachment"}
    for d in deleted:
        assert since <= parse_dt(d["Deleted At"], m["date_order"], tz) <= exported
    base_wos = {w["WO Number"]: w for w in read(clean, "work_orders.csv")}
    gone = {d["ID"] for d in deleted if d["Entity"] == "Work Order"}
    assert gone <= set(base_wos)
    changed = new = 0
    for w in read(delta, "work_orders.csv"):
        assert w["WO Number"] not in gone
        if w["WO Number"] in base_wos:
            changed += 1
            old = base_wos[w["WO Number"]]
            assert w["Date Modified"] != old["Date Modified"]
            assert (w["Status"], w["Priority"]) != (old["Status"], old["Priority"])
        else:
            new += 1
    assert changed == pytest.approx(0.05 * N, abs=3) and new >= 0.01 * N
    assert len(read(delta, "work_orders.csv")) < 0.1 * N
    # the changed work orders' new status-log entries continue their chain
    delta_log = {e["WO Number"]: e for e in read(delta, "status_log.csv")}
    for w in read(delta, "work_orders.csv"):
        if w["WO Number"] in base_wos and w["Status"] != base_wos[w["WO Number"]]["Status"]:
            e = delta_log[w["WO Number"]]
            assert (e["From Status"], e["To Status"]) == (base_wos[w["WO Number"]]["Status"], w["Status"])
    # records the delta adds get ids after the base's, never one of the base's
    for file, id_column in (("status_log.csv", "Log ID"), ("labor.csv", "Labor ID"), ("notes.csv", "Note ID")):
        assert not {r[id_column] for r in read(delta, file)} & {r[id_column] for r in read(clean, file)}, file
    # deterministic too
    again = generate(tmp_path / "d2", "--delta-from", str(clean))
    assert (again / "manifest.json").read_bytes() == (delta / "manifest.json").read_bytes()


def test_open_bundle_accepts_generated_bundles(tmp_path):
    for name, args in (("plain", ()), ("messy", ("--mess", "0.05", "--encoding", "cp1252", "--date-order", "DMY"))):
        out = generate(tmp_path / name, "--work-orders", "300", "--zip", *args)
        opened = open_bundle(out, tmp_path / f"work-{name}")
        assert opened.manifest.export_id == "springfield-20261120T070000Z"
        from_zip = open_bundle(tmp_path / f"{name}.zip", tmp_path / f"work-{name}-zip")
        assert from_zip.manifest.files == opened.manifest.files
    delta = generate(tmp_path / "delta", "--delta-from", str(tmp_path / "plain"))
    assert open_bundle(delta, tmp_path / "work-delta").manifest.kind == "delta"


def test_delta_share_sizes_the_delta(tmp_path):
    """`--delta-share` scales how many work orders a delta changes or adds: 1% of 400 touches a few, the
    default 7% several times more; both continue the base's ids."""
    from flitstack_dagster.cli import main as cli_main

    base = tmp_path / "base"
    assert cli_main(["generate", "--work-orders", "400", "--seed", "3", "--out", str(base), "--no-mess-log"]) == 0

    def wos(out: Path, *extra: str) -> int:
        assert cli_main(["generate", "--delta-from", str(base), "--seed", "4", "--out", str(out), "--no-mess-log",
                         *extra]) == 0
        with open(out / "work_orders.csv", encoding="utf-8-sig", newline="") as f:
            return sum(1 for _ in csv.DictReader(f))

    small, default = wos(tmp_path / "d1", "--delta-share", "0.01"), wos(tmp_path / "d7")
    assert 2 <= small <= 8 and default >= 3 * small
