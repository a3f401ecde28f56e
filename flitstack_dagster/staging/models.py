"""The dbt-like SQL models of `dbt_like_sql/`: discovery, dependency order and rendering.

A model is one `.sql` file under `dbt_like_sql/<layer>/` (e.g. `staging/stg_work_orders.sql`). Its
first comment lines (`-- ...`) are its description. The SQL is a single SELECT with a tiny template
language, `{{ ... }}`:

- `{{ source('raw', 'work_orders') }}` -> the raw table (or an empty relation with the standard
  headers when that run's bundle has no such file / the table does not exist yet)
- `{{ ref('stg_accounts') }}` -> `staging."stg_accounts"`; refs are the ONLY dependencies
- `{{ run_key }}`, `{{ date_order }}`, `{{ timezone }}`, `{{ exported_at }}`, `{{ kind }}` -> the
  run's values, escaped for use inside a single-quoted SQL literal
- `{{ parent_runs }}` -> a SQL list literal of the runs whose staged records count as existing
  parents: `('<run_key>')`, and for a delta also the same tenant's earlier runs
- `{{ earlier_ids('stg_assets', 'asset_id') }}` -> a relation `(id)` of that column in the earlier
  runs (deltas; empty otherwise) — for a model's references to its own table, which cannot be refs
- `{{ udf_columns('Work Order') }}` -> `, <typed expr> AS "udf_..."` for each UDF the run declares
  in raw.user_defined_fields for that entity (and whose column exists in the raw table); empty when
  there are none
- `{{ udf_issues('Work Order') }}` -> a SQL list of the value-level notices for those UDF columns
  (`[]` when there are none)

No Dagster import here: the Dagster layer builds one asset per model from this API.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from flitstack_dagster.novo import columns as novo
from flitstack_dagster.novo.attachment_bodies import COLUMNS as BODY_COLUMNS

SQL_ROOT: Path = Path(__file__).resolve().parents[2] / "dbt_like_sql"
MACROS_DIR = "macros"
TEMPLATE_RE = re.compile(r"\{\{\s*(.*?)\s*\}\}", re.DOTALL)
_CALL_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)$", re.DOTALL)
_VARS = ("run_key", "date_order", "timezone", "exported_at", "kind", "parent_runs")


class ModelError(ValueError):
    """A model file is wrong (unknown ref, cycle, bad template); the message names the file."""


@dataclass(frozen=True)
class SqlModel:
    name: str  # file stem, e.g. "stg_work_orders"; also the table name
    path: Path
    layer: str  # the folder under dbt_like_sql, e.g. "staging" (also the DuckDB schema)
    refs: tuple[str, ...]
    sources: tuple[tuple[str, str], ...]  # (schema, table)
    description: str
    sql: str  # the template text as written

    @property
    def table(self) -> str:
        return f'{self.layer}."{self.name}"'

    @property
    def entity(self) -> str:
        """`stg_work_orders` -> `work_orders`."""
        return self.name.removeprefix("stg_")

    @property
    def file(self) -> str:
        """The bundle file the model stages (`work_orders.csv`, `workflow_rules.json`)."""
        f = novo.BY_ENTITY.get(self.entity)
        return f.file if f else f"{self.entity}.json"


@dataclass(frozen=True)
class UdfColumn:
    """One user defined field of a run, as declared in raw.user_defined_fields."""

    entity: str  # `Work Order`, `Asset`, `Contact`, `Account`
    label: str
    column: str  # the header in the entity's file, e.g. `UDF: Council District`
    data_type: str  # `Text`, `Number`, `Pick List`, ...
    choices: tuple[str, ...] = ()
    required: bool = False  # `Required` = Yes: a blank value is reported (the record still loads)


@dataclass
class RenderContext:
    run_key: str
    date_order: str = "MDY"
    timezone: str = "UTC"
    exported_at: str = "2000-01-01 00:00:00+00"  # UTC, `YYYY-MM-DD HH:MM:SS+00`
    kind: str = "full"
    udfs: list[UdfColumn] = field(default_factory=list)
    # columns of each existing raw table (`work_orders` -> headers); None = don't check (assume the
    # raw tables exist with every standard column)
    raw_columns: dict[str, list[str]] | None = None
    # runs whose staged records count as existing parents: this run; for a delta also the same
    # tenant's earlier runs (a delta only carries changed records; its links point at older ones)
    earlier_runs: list[str] = field(default_factory=list)
    staging_tables: set[str] | None = None  # existing staging tables; None = assume all exist

    @property
    def parent_runs(self) -> str:
        """SQL list literal, e.g. `('full-1', 'delta-2')`."""
        return "(" + ", ".join(q_lit(r) for r in [self.run_key, *self.earlier_runs]) + ")"


# --------------------------------------------------------------------------------------------- #
# discovery


def _description(text: str) -> str:
    lines = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("--"):
            lines.append(s[2:].strip())
        elif s == "" and not lines:
            continue
        else:
            break
    return " ".join(x for x in lines if x).strip()


def _calls(text: str, path: Path) -> list[tuple[str, tuple]]:
    out = []
    for expr in TEMPLATE_RE.findall(text):
        m = _CALL_RE.match(expr)
        if not m:
            if expr not in _VARS:
                raise ModelError(f"{path}: unknown template variable {{{{ {expr} }}}}")
            continue
        name, args = m.group(1), m.group(2)
        try:
            parsed = ast.literal_eval(f"({args},)") if args.strip() else ()
        except (ValueError, SyntaxError) as exc:
            raise ModelError(f"{path}: cannot read the arguments of {{{{ {expr} }}}}: {exc}") from None
        if name not in ("source", "ref", "udf_columns", "udf_issues", "earlier_ids"):
            raise ModelError(f"{path}: unknown template function {name}()")
        if not all(isinstance(a, str) for a in parsed):
            raise ModelError(f"{path}: {{{{ {expr} }}}}: arguments must be quoted strings")
        if (name in ("source", "earlier_ids") and len(parsed) != 2) or (
            name not in ("source", "earlier_ids") and len(parsed) != 1
        ):
            raise ModelError(f"{path}: {{{{ {expr} }}}}: wrong number of arguments")
        out.append((name, parsed))
    return out


def load_model(path: Path, layer: str | None = None) -> SqlModel:
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    calls = _calls(text, path)
    refs = tuple(dict.fromkeys(a[0] for n, a in calls if n == "ref"))
    sources = tuple(dict.fromkeys((a[0], a[1]) for n, a in calls if n == "source"))
    return SqlModel(
        name=path.stem, path=path, layer=layer or path.parent.name, refs=refs, sources=sources,
        description=_description(text), sql=text,
    )


def discover_models(root: Path | str = SQL_ROOT) -> list[SqlModel]:
    """Every model under `root/<layer>/*.sql` (not `macros/`), dependencies first.

    Raises ModelError naming the file for an unknown ref, a self-ref, a cycle or a duplicate name.
    """
    root = Path(root)
    models: dict[str, SqlModel] = {}
    for path in sorted(root.glob("*/*.sql")):
        if path.parent.name == MACROS_DIR:
            continue
        m = load_model(path)
        if m.name in models:
            raise ModelError(f"{path}: a model named {m.name} already exists ({models[m.name].path})")
        models[m.name] = m
    for m in models.values():
        for r in m.refs:
            if r == m.name:
                raise ModelError(f"{m.path}: model {m.name} refs itself")
            if r not in models:
                raise ModelError(f"{m.path}: ref('{r}') names no model under {root}")
    ts = TopologicalSorter({name: m.refs for name, m in sorted(models.items())})
    try:
        order = list(ts.static_order())
    except CycleError as exc:
        cycle = exc.args[1]
        files = ", ".join(str(models[n].path) for n in dict.fromkeys(cycle))
        raise ModelError(f"ref cycle {' -> '.join(cycle)} in {files}") from None
    return [models[n] for n in order]


# --------------------------------------------------------------------------------------------- #
# rendering


def q_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def q_lit(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _esc(value: object) -> str:
    return str(value).replace("'", "''")


def _standard_headers(table: str) -> list[str] | None:
    if table in ("workflow_rules", "form_configurations"):
        return ["json"]
    f = novo.BY_ENTITY.get(table)
    if f is None:
        return None
    # landing's body facts; NULL (= not checked) in raw layers landed before them or built by hand
    return f.headers + list(BODY_COLUMNS) if table == "attachments" else f.headers


def _render_source(schema: str, table: str, ctx: RenderContext) -> str:
    wanted = _standard_headers(table) if schema == "raw" else None
    name = f"{q_ident(schema)}.{q_ident(table)}"
    if ctx.raw_columns is None or schema != "raw" or wanted is None:
        return name
    have = ctx.raw_columns.get(table)
    if have is None:  # no such raw table (e.g. deleted.csv of a full bundle): an empty relation
        cols = ["NULL::VARCHAR AS _run_key", "NULL::BIGINT AS _row_number"]
        cols += [f"NULL::VARCHAR AS {q_ident(h)}" for h in wanted]
        return f"(SELECT {', '.join(cols)} WHERE false)"
    missing = [h for h in wanted if h not in have]
    if not missing:
        return name
    extra = ", ".join(f"NULL::VARCHAR AS {q_ident(h)}" for h in missing)
    return f"(SELECT *, {extra} FROM {name})"


def udf_specs(entity: str, ctx: RenderContext) -> list[tuple[UdfColumn, str]]:
    """The run's UDFs of `entity` that exist in its raw table, with their staged column names."""
    nf = novo.UDF_FILE.get(entity)
    if nf is None:
        raise ModelError(f"udf_columns('{entity}'): entity must be one of {', '.join(novo.UDF_FILE)}")
    have = None if ctx.raw_columns is None else set(ctx.raw_columns.get(nf.entity, ()))
    taken = {c.name for c in nf.columns}
    out = []
    for u in ctx.udfs:
        if u.entity != entity or u.column in nf.headers:
            continue
        if have is not None and u.column not in have:
            continue
        name, i = novo.snake(u.column), 2
        base = name
        while name in taken or name.startswith("_"):
            name = f"{base.lstrip('_')}_{i}"
            i += 1
        taken.add(name)
        out.append((u, name))
    return out


def _udf_value(u: UdfColumn) -> str:
    col = q_ident(u.column)
    t = novo.UDF_TYPE.get(u.data_type, novo.ColType.TEXT)
    if t is novo.ColType.NUMBER:
        return f"novo_number({col})"
    if t is novo.ColType.MONEY:
        return f"novo_money({col})"
    if t is novo.ColType.DATE:
        return f"novo_date({col}, '{{{{ date_order }}}}', TIMESTAMPTZ '{{{{ exported_at }}}}')"
    if t is novo.ColType.YESNO:
        return f"novo_yesno({col})"
    if t is novo.ColType.MULTI:
        return f"novo_multi({col})"
    return f"novo_text({col})"


def _udf_issues(u: UdfColumn) -> list[str]:
    """The UDF's value notices: a bad or unlisted value, and a blank one when the UDF is Required."""
    col = q_ident(u.column)
    t = novo.UDF_TYPE.get(u.data_type, novo.ColType.TEXT)
    choices = "[" + ", ".join(q_lit(c) for c in u.choices) + "]::VARCHAR[]"
    code = {
        novo.ColType.NUMBER: f"novo_number_issue({col})",
        novo.ColType.MONEY: f"novo_money_issue({col})",
        novo.ColType.DATE: f"novo_date_issue({col}, '{{{{ date_order }}}}', TIMESTAMPTZ '{{{{ exported_at }}}}')",
        novo.ColType.YESNO: f"novo_yesno_issue({col})",
    }.get(t)
    if u.data_type == "Pick List" and u.choices:
        code = f"novo_choice_issue({col}, {choices})"
    if u.data_type == "Multi Pick List" and u.choices:
        code = f"novo_multi_choice_issue({col}, {choices})"
    out = [f"novo_issue({q_lit(u.column)}, {col}, {code})"] if code else []
    if u.required:
        nf = novo.UDF_FILE[u.entity]
        out.append(f"novo_required_issue({q_lit(u.column)}, {col}, {q_lit(nf.label)})")
    return out


def _as_ctx(ctx: RenderContext | Mapping) -> RenderContext:
    if isinstance(ctx, RenderContext):
        return ctx
    d = dict(ctx)
    d["udfs"] = [u if isinstance(u, UdfColumn) else UdfColumn(**u) for u in d.get("udfs", [])]
    return RenderContext(**d)


def render(model: SqlModel, ctx: RenderContext | Mapping) -> str:
    """The model's SQL with every `{{ ... }}` replaced for one run."""
    c = _as_ctx(ctx)

    def one(expr: str, depth: int = 0) -> str:
        m = _CALL_RE.match(expr)
        if not m:
            if expr not in _VARS:
                raise ModelError(f"{model.path}: unknown template variable {{{{ {expr} }}}}")
            return getattr(c, expr) if expr == "parent_runs" else _esc(getattr(c, expr))
        name, args = m.group(1), ast.literal_eval(f"({m.group(2)},)") if m.group(2).strip() else ()
        if name == "source":
            return _render_source(args[0], args[1], c)
        if name == "ref":
            return f'staging."{args[0]}"'
        if name == "earlier_ids":  # ids of a staged table in the earlier runs (delta); no dependency
            table, col = args
            if not c.earlier_runs or (c.staging_tables is not None and table not in c.staging_tables):
                return "(SELECT NULL::VARCHAR AS id WHERE false)"
            runs = ", ".join(q_lit(r) for r in c.earlier_runs)
            return f"(SELECT DISTINCT {q_ident(col)} AS id FROM staging.{q_ident(table)} WHERE _run_key IN ({runs}))"
        specs = udf_specs(args[0], c)
        if name == "udf_columns":
            body = "".join(f",\n        {_udf_value(u)} AS {q_ident(n)}" for u, n in specs)
        elif name == "udf_issues":
            items = [x for u, _ in specs for x in _udf_issues(u)]
            body = "[" + ",\n            ".join(items) + "]"
        else:  # pragma: no cover - _calls() already refused it
            raise ModelError(f"{model.path}: unknown template function {name}()")
        # UDF expansions contain {{ date_order }} etc.: render them too
        return TEMPLATE_RE.sub(lambda mm: one(mm.group(1), depth + 1), body) if depth == 0 else body

    return TEMPLATE_RE.sub(lambda mm: one(mm.group(1)), model.sql)
