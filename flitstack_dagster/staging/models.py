"""The dbt-like SQL models of `dbt_like_sql/`: discovery, dependency order and rendering.

A model is one `.sql` file under `dbt_like_sql/<layer>/` (e.g. `staging/stg_work_orders.sql`). Its
first comment lines (`-- ...`) are its description. The SQL is a single SELECT written as a Jinja
template; the macros of `macros/blocks.jinja` (the blocks every model repeats: `latest_wins`,
`row_verdict`, ...) are imported into every model. The names a model may use:

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
- `link('Account ID', 'stg_accounts.account_id', 'an account', required=False)` -> a reference to
  another record, for the blocks' `link_ids`, `unlinked_as_null`, `link_joins`, `row_verdict`

No Dagster import here: the Dagster layer builds one asset per model from this API.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import jinja2
from jinja2 import meta as jinja_meta
from jinja2 import nodes as jinja_nodes

from flitstack_dagster.novo import columns as novo
from flitstack_dagster.novo.attachment_bodies import COLUMNS as BODY_COLUMNS

SQL_ROOT: Path = Path(__file__).resolve().parents[2] / "dbt_like_sql"
MACROS_DIR = "macros"
BLOCKS_FILE = "blocks.jinja"  # the Jinja macros every model may call, e.g. {{ latest_wins(...) }}
_FUNCTIONS = ("source", "ref", "udf_columns", "udf_issues", "earlier_ids", "link")
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

    @property
    def code_version(self) -> str:
        """Changes when the model's text or the shared blocks it renders with change."""
        text = self.sql + _blocks_source(self.path.parent.parent)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


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


def _blocks_source(root: Path) -> str:
    path = root / MACROS_DIR / BLOCKS_FILE
    return path.read_text(encoding="utf-8") if path.is_file() else ""


@functools.lru_cache(maxsize=8)  # one per models folder: its blocks compile once
def _environment(root: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root / MACROS_DIR)), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, autoescape=False,
    )
    env.filters["snake"] = novo.snake
    return env


def _refuse_unknown_names(tree: jinja_nodes.Template, known: set[str], path: Path) -> None:
    called = {c.node.name for c in tree.find_all(jinja_nodes.Call) if isinstance(c.node, jinja_nodes.Name)}
    for name in sorted(jinja_meta.find_undeclared_variables(tree) - known):
        if name in called:
            raise ModelError(f"{path}: unknown template function {name}()")
        raise ModelError(f"{path}: unknown template variable {{{{ {name} }}}}")


def _template(text: str, path: Path) -> jinja2.Template:
    """The model as a Jinja template with the shared blocks of `macros/blocks.jinja` imported."""
    return _compiled(text, path, _blocks_source(path.parent.parent))


@functools.lru_cache(maxsize=256)  # every run renders the same models: compiling them is most of rendering
def _compiled(text: str, path: Path, blocks: str) -> jinja2.Template:
    root = path.parent.parent
    env = _environment(root)
    names = [m.name for m in env.parse(blocks).find_all(jinja_nodes.Macro)] if blocks else []
    try:
        tree = env.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        raise ModelError(f"{path}: line {exc.lineno}: {exc.message}") from None
    _refuse_unknown_names(tree, {*_VARS, *_FUNCTIONS, *names}, path)
    head = f"{{% from '{BLOCKS_FILE}' import {', '.join(names)} with context %}}" if names else ""
    return env.from_string(head + text)


def _strings(path: Path, name: str, fn, arity: int):
    """`fn` for the template: refuses other argument counts and anything but strings, naming the file."""
    def call(*args):
        if len(args) != arity:
            raise ModelError(f"{path}: {name}(): wrong number of arguments")
        if not all(isinstance(a, str) for a in args):
            raise ModelError(f"{path}: {name}(): arguments must be quoted strings")
        return fn(*args)
    return call


def _link(label: str, target: str | None = None, noun: str = "", required: bool = False) -> dict:
    """A reference to another record: `link('Account ID', 'stg_accounts.account_id', 'an account')`.
    No target: the model defines the ids CTE `p_<column>` itself (e.g. a reference to its own rows)."""
    column = novo.snake(label)
    model, _, model_column = (target or "").partition(".")
    return {"label": label, "column": column, "cte": f"p_{column}", "model": model,
            "model_column": model_column, "noun": noun, "required": required}


def _names(path: Path, c: RenderContext, record: list | None = None) -> dict:
    """What a model's template may use, for run `c`; `record` collects the sources and refs called."""
    def source(schema: str, table: str) -> str:
        if record is not None:
            record.append(("source", (schema, table)))
        return _render_source(schema, table, c)

    def ref(name: str) -> str:
        if record is not None:
            record.append(("ref", (name,)))
        return f'staging."{name}"'

    fns = {"source": (source, 2), "ref": (ref, 1), "earlier_ids": (lambda t, col: _earlier_ids(t, col, c), 2),
           "udf_columns": (lambda e: _udf_columns(e, c), 1), "udf_issues": (lambda e: _udf_issues_list(e, c), 1)}
    out = {n: _strings(path, n, f, k) for n, (f, k) in fns.items()}
    out["link"] = _link
    out.update({v: _esc(getattr(c, v)) for v in _VARS if v != "parent_runs"})
    out["parent_runs"] = c.parent_runs
    return out


def _render_text(text: str, path: Path, c: RenderContext, record: list | None = None) -> str:
    try:
        return _template(text, path).render(_names(path, c, record))
    except jinja2.TemplateError as exc:
        raise ModelError(f"{path}: {exc}") from None


def load_model(path: Path, layer: str | None = None) -> SqlModel:
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    calls: list = []
    _render_text(text, path, RenderContext(run_key="discovery"), calls)
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


def _udf_value(u: UdfColumn, c: RenderContext) -> str:
    col = q_ident(u.column)
    t = novo.UDF_TYPE.get(u.data_type, novo.ColType.TEXT)
    if t is novo.ColType.NUMBER:
        return f"novo_number({col})"
    if t is novo.ColType.MONEY:
        return f"novo_money({col})"
    if t is novo.ColType.DATE:
        return f"novo_date({col}, '{_esc(c.date_order)}', TIMESTAMPTZ '{_esc(c.exported_at)}')"
    if t is novo.ColType.YESNO:
        return f"novo_yesno({col})"
    if t is novo.ColType.MULTI:
        return f"novo_multi({col})"
    return f"novo_text({col})"


def _udf_issues(u: UdfColumn, c: RenderContext) -> list[str]:
    """The UDF's value notices: a bad or unlisted value, and a blank one when the UDF is Required."""
    col = q_ident(u.column)
    t = novo.UDF_TYPE.get(u.data_type, novo.ColType.TEXT)
    choices = "[" + ", ".join(q_lit(ch) for ch in u.choices) + "]::VARCHAR[]"
    code = {
        novo.ColType.NUMBER: f"novo_number_issue({col})",
        novo.ColType.MONEY: f"novo_money_issue({col})",
        novo.ColType.DATE: f"novo_date_issue({col}, '{_esc(c.date_order)}', TIMESTAMPTZ '{_esc(c.exported_at)}')",
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


def _udf_columns(entity: str, c: RenderContext) -> str:
    return "".join(f",\n        {_udf_value(u, c)} AS {q_ident(n)}" for u, n in udf_specs(entity, c))


def _udf_issues_list(entity: str, c: RenderContext) -> str:
    items = [x for u, _ in udf_specs(entity, c) for x in _udf_issues(u, c)]
    return "[" + ",\n            ".join(items) + "]"


def _earlier_ids(table: str, col: str, c: RenderContext) -> str:
    """The ids of a staged table in the earlier runs (delta); not a dependency."""
    if not c.earlier_runs or (c.staging_tables is not None and table not in c.staging_tables):
        return "(SELECT NULL::VARCHAR AS id WHERE false)"
    runs = ", ".join(q_lit(r) for r in c.earlier_runs)
    return f"(SELECT DISTINCT {q_ident(col)} AS id FROM staging.{q_ident(table)} WHERE _run_key IN ({runs}))"


def _as_ctx(ctx: RenderContext | Mapping) -> RenderContext:
    if isinstance(ctx, RenderContext):
        return ctx
    d = dict(ctx)
    d["udfs"] = [u if isinstance(u, UdfColumn) else UdfColumn(**u) for u in d.get("udfs", [])]
    return RenderContext(**d)


def render(model: SqlModel, ctx: RenderContext | Mapping) -> str:
    """The model's SQL for one run: its Jinja template rendered with the run's values."""
    return _render_text(model.sql, model.path, _as_ctx(ctx))
