import hashlib
from dataclasses import replace

import polars as pl

from flitstack_dagster.mapping.model import Mapping, MappingOptions
from flitstack_dagster.shaping.files import default_resolver, path_is_safe, shape_files
from flitstack_dagster.staging.frames import normalise

MB = 1024 * 1024


def _att(**over):
    base = {
        "attachment_id": ["F1", "F2", "F3"], "parent_type": ["Work Order", "Asset", "Work Order"], "parent_id": ["WO-1", "00042", "WO-GONE"],
        "file_name": ["a.pdf", "big.mov", "c.txt"], "bundle_path": ["files/WO-1/a.pdf", "files/00042/big.mov", "files/c.txt"],
        "size": [10.0, float(26 * MB), 1.0], "content_type": ["application/pdf", "video/quicktime", "text/plain"], "sha_256": [None, None, None],
    }
    base.update(over)
    return normalise("attachments", pl.DataFrame(base))


def test_size_decision_26mb_flagged_and_set_aside(ctx):
    out = shape_files(_att(), {"asset:00042"}, {"work_order:WO-1"}, Mapping(), ctx)
    rows = {r["source_id"]: r for r in out.frame.to_dicts()}
    assert rows["attachment:F1"]["decision"] == "upload" and rows["attachment:F1"]["deal_ref"] == "work_order:WO-1"
    assert rows["attachment:F2"]["decision"] == "flag_too_large" and rows["attachment:F2"]["size"] == 26 * MB
    assert rows["attachment:F2"]["org_ref"] == "asset:00042"
    sa = dict(out.set_aside.select("source_id", "reason_code").iter_rows())
    assert sa == {"attachment:F3": "orphan_reference", "attachment:F2": "file_too_large"}


def test_split_policy(ctx):
    m = Mapping(options=MappingOptions(large_file_policy="split"))
    out = shape_files(_att(), {"asset:00042"}, {"work_order:WO-1"}, m, ctx)
    assert dict(out.frame.select("source_id", "decision").iter_rows())["attachment:F2"] == "split"
    assert "file_too_large" not in out.set_aside["reason_code"].to_list()


def test_path_safety():
    assert path_is_safe("files/WO-1/photo 1.jpg")
    for bad in ["../etc/passwd", "/etc/passwd", "files/../../x", "C:\\x", "\\\\srv\\x", "", None]:
        assert not path_is_safe(bad)


def test_bodies_checked_inside_bundle(tmp_path, ctx):
    root = tmp_path / "bundle"
    (root / "files").mkdir(parents=True)
    good = b"hello"
    (root / "files" / "ok.txt").write_bytes(good)
    (root / "files" / "bad.txt").write_bytes(b"other")
    big = root / "files" / "big.bin"
    with big.open("wb") as f:  # sparse 26 MB file: no 26 MB written
        f.truncate(26 * MB)
    (tmp_path / "secret.txt").write_text("s")
    att = pl.DataFrame({
        "attachment_id": ["A", "B", "C", "D", "E", "F"], "parent_type": ["Work Order"] * 6, "parent_id": ["WO-1"] * 6,
        "file_name": list("ABCDEF"),
        "bundle_path": ["files/ok.txt", "files/bad.txt", "files/none.txt", "../secret.txt", "files/big.bin", "files/ok.txt"],
        "size": [5.0, 5.0, 5.0, 1.0, float(26 * MB), 99.0],
        "sha_256": [hashlib.sha256(good).hexdigest(), hashlib.sha256(good).hexdigest(), None, None, None, None],
    })
    att = normalise("attachments", att)
    c = replace(ctx, bundle_root=root)
    out = shape_files(att, set(), {"work_order:WO-1"}, Mapping(), c)
    sa = dict(out.set_aside.select("source_id", "reason_code").iter_rows())
    assert sa == {
        "attachment:B": "hash_mismatch", "attachment:C": "body_missing", "attachment:D": "hostile_path",
        "attachment:E": "file_too_large", "attachment:F": "size_mismatch",
    }
    assert out.frame.filter(pl.col("decision") == "upload")["source_id"].to_list() == ["attachment:A"]
    # an injected resolver (Bundle.resolve_inside) is honoured
    c2 = replace(ctx, bundle_root=root, resolve_inside=lambda rel: None)
    out2 = shape_files(att.head(1), set(), {"work_order:WO-1"}, Mapping(), c2)
    assert out2.set_aside["reason_code"].to_list() == ["hostile_path"]
    assert default_resolver(root)("files/../../secret.txt") is None


def test_bodies_landing_checked_are_not_opened_again(tmp_path, ctx):
    """A staged row with landing's `_body_bytes` was checked already: its body is not opened (here it
    does not even exist) and its size is the measured one; a row without it is still checked."""
    att = _att(bundle_path=["files/landed.pdf", "files/unchecked.mov", "files/c.txt"], size=[10.0, 7.0, 1.0])
    att = att.with_columns(pl.Series("_body_bytes", [12, None, None], dtype=pl.Int64))
    out = shape_files(att, {"asset:00042"}, {"work_order:WO-1"}, Mapping(), replace(ctx, bundle_root=tmp_path))
    rows = {r["source_id"]: r for r in out.frame.to_dicts()}
    assert rows["attachment:F1"]["decision"] == "upload" and rows["attachment:F1"]["size"] == 12
    sa = dict(out.set_aside.select("source_id", "reason_code").iter_rows())
    assert sa == {"attachment:F2": "body_missing", "attachment:F3": "orphan_reference"}
