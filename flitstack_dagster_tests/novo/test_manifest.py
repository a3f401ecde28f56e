"""manifest.json rules: each one refuses with manifest.json, the key and plain words."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

import pytest

from flitstack_dagster.core.errors import BundleError
from flitstack_dagster.novo.manifest import Manifest, load_manifest
from flitstack_dagster_tests.novo.bundle_factory import BASE_MANIFEST

SHA = "ab" * 32


def manifest(**changes: Any) -> dict[str, Any]:
    m = {**BASE_MANIFEST,
         "files": [{"name": "work_orders.csv", "rows": 1200, "bytes": 481516, "sha256": SHA}]}
    m.update(changes)
    return m


def load(m: dict[str, Any]) -> Manifest:
    return load_manifest(json.dumps(m).encode())


def refusal(m: dict[str, Any]) -> str:
    with pytest.raises(BundleError) as e:
        load(m)
    msg = str(e.value)
    assert msg.startswith("manifest.json")
    assert "pydantic" not in msg and "Traceback" not in msg and "input_value" not in msg
    return msg


def test_spec_example_is_accepted():
    m = load(manifest())
    assert m.export_id == "springfield-20261120T070000Z"
    assert m.exported_at.tzinfo is not None and m.exported_at.utcoffset().total_seconds() == 0
    assert m.files[0].rows == 1200 and m.file("work_orders.csv").sha256 == SHA
    assert m.file("labor.csv") is None


def test_delta_with_changed_since_is_accepted():
    m = load(manifest(kind="delta", changed_since="2026-11-01T00:00:00-06:00"))
    assert m.changed_since.astimezone(UTC).hour == 6


@pytest.mark.parametrize("version", [2, 0, "1", 1.0, True, None])
def test_other_format_versions_are_refused(version):
    msg = refusal(manifest(format_version=version))
    assert "unknown format version" in msg and "this FlitStack reads format 1" in msg


def test_version_2_message_is_exact():
    assert refusal(manifest(format_version=2)) == (
        "manifest.json: unknown format version 2; this FlitStack reads format 1."
    )


def test_version_is_checked_before_other_keys():
    """A v2 manifest may use keys differently; the user must hear about the version, not the keys."""
    msg = refusal({"format": "novo-work-order-export", "format_version": 2, "kind": "weird"})
    assert "unknown format version 2" in msg and "kind" not in msg


def test_other_format_is_refused():
    assert "not a Novo Work Order export" in refusal(manifest(format="other-cmms-export"))


@pytest.mark.parametrize(
    "changes, fragments",
    [
        ({"export_id": "spring/field"}, ["export_id", "letters, digits"]),
        ({"export_id": "a b"}, ["export_id"]),
        ({"export_id": ""}, ["export_id"]),
        ({"export_id": 42}, ["export_id must be text"]),
        ({"exported_at": "2026-11-20T07:00:00"}, ["exported_at", "offset or Z"]),
        ({"exported_at": "yesterday"}, ["exported_at", "ISO 8601"]),
        ({"exported_at": 1763622000}, ["exported_at", "ISO 8601"]),
        ({"kind": "incremental"}, ["kind must be 'full' or 'delta'", "'incremental'"]),
        ({"changed_since": "2026-11-01T00:00:00Z"}, ["changed_since must be null for a full export"]),
        ({"kind": "delta"}, ["changed_since must be the instant a delta export starts at"]),
        ({"kind": "delta", "changed_since": "2026-11-01"}, ["changed_since"]),
        ({"timezone": "Mars/Olympus_Mons"}, ["timezone", "IANA"]),
        ({"timezone": "../../etc/passwd"}, ["timezone", "IANA"]),
        ({"encoding": "latin-1"}, ["encoding must be 'utf-8', 'utf-8-sig' or 'cp1252'"]),
        ({"encoding": "UTF-8"}, ["encoding"]),
        ({"date_order": "YMD"}, ["date_order must be 'MDY' or 'DMY'"]),
        ({"files": "work_orders.csv"}, ["files must be a list"]),
        ({"files": [{"name": "a.csv", "rows": -1, "bytes": 1, "sha256": SHA}]}, ["files[0].rows must be 0 or more"]),
        ({"files": [{"name": "a.csv", "rows": 1, "bytes": -5, "sha256": SHA}]}, ["files[0].bytes must be 0 or more"]),
        ({"files": [{"name": "a.csv", "rows": "12", "bytes": 1, "sha256": SHA}]}, ["files[0].rows must be a whole number"]),
        ({"files": [{"name": "a.csv", "rows": 1, "bytes": 1, "sha256": "abc"}]}, ["files[0].sha256", "64 hexadecimal"]),
        ({"files": [{"name": "a.csv", "rows": 1, "bytes": 1, "sha256": "g" * 64}]}, ["files[0].sha256"]),
        ({"files": [{"name": "a.csv", "rows": 1, "bytes": 1}]}, ["files[0].sha256 is missing"]),
        ({"files": [{"name": "files/a.csv", "rows": 1, "bytes": 1, "sha256": SHA}]}, ["files[0].name", "plain file name"]),
        ({"files": [{"name": "..", "rows": 1, "bytes": 1, "sha256": SHA}]}, ["files[0].name"]),
        ({"files": [{"name": "C:\\a.csv", "rows": 1, "bytes": 1, "sha256": SHA}]}, ["files[0].name"]),
        ({"files": [{"name": "/etc/passwd", "rows": 1, "bytes": 1, "sha256": SHA}]}, ["files[0].name"]),
        (
            {"files": [{"name": "a.csv", "rows": 1, "bytes": 1, "sha256": SHA}] * 2},
            ["files lists a.csv twice"],
        ),
    ],
)
def test_each_rule_refuses_in_plain_words(changes, fragments):
    msg = refusal(manifest(**changes))
    for fragment in fragments:
        assert fragment in msg


@pytest.mark.parametrize("key", ["export_id", "exported_at", "kind", "changed_since", "timezone", "encoding",
                                 "date_order", "files"])
def test_missing_key_is_named(key):
    m = manifest()
    del m[key]
    assert f"{key} is missing" in refusal(m)


def test_several_problems_are_reported_together():
    msg = refusal(manifest(kind="nope", date_order="YMD"))
    assert "kind" in msg and "date_order" in msg


@pytest.mark.parametrize("data, fragment", [
    (b'{"format": "novo-work-order-export", ', "not valid JSON"),
    (b"[1, 2]", "one JSON object"),
    (b"\xff\xfe{}", "not UTF-8"),
])
def test_unreadable_manifest(data, fragment):
    with pytest.raises(BundleError, match=fragment):
        load_manifest(data)


def test_bom_and_unknown_extra_keys_are_tolerated():
    m = load_manifest(b"\xef\xbb\xbf" + json.dumps(manifest(generator="novo 9.3")).encode())
    assert m.kind == "full"


def test_sha256_is_normalized_to_lower_case():
    m = load(manifest(files=[{"name": "a.csv", "rows": 0, "bytes": 0, "sha256": "AB" * 32}]))
    assert m.files[0].sha256 == "ab" * 32
