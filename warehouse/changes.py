"""What changed since the last successful build, publish and report: the incremental run's plan.

Every stage after the load (dbt build, publish, report) records in ``<data_dir>/.state/last_run.json`` the inputs
it completed with: a fingerprint of the code that shapes its output (the dbt project, the warehouse package, dbt
version and any extra dbt arguments) and, per raw table, a digest of the loads live in it (``ops.loads``). The
next run compares the current inputs with that record:

* nothing differs -> the stage is skipped (a run that loaded nothing does no dbt, publish or report work);
* only some raw tables differ -> dbt builds ``source:<those>+`` (everything downstream of them, tests included),
  publish rewrites only the marts fed by them; the marts are byte-identical to a full build's
  (tests/test_changes.py);
* the code differs, or there is no record (first run, a record from an older layout) -> everything, as before.

:func:`dbt_selection` returns a selection string (None = everything) that composes with other selections (e.g.
skipping marts whose inputs are absent) by dbt's own set operators.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

from regionstat.batches import atomic_write
from regionstat.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

Stage = Literal["build", "publish", "report"]
STAGES: tuple[Stage, ...] = ("build", "publish", "report")
STATE_NAME = "last_run.json"
STATE_VERSION = 2
#: Code whose change invalidates every recorded stage (output of dbt, publish and report depends on it).
FINGERPRINTED = (
    ("dbt_project", ("models", "macros", "seeds", "tests", "snapshots", "analyses")),
    ("dbt_project", ("dbt_project.yml", "profiles.yml", "packages.yml")),
    ("warehouse", ("",)),
)
_SKIP_PARTS = {"target", "logs", "dbt_packages", "__pycache__", ".pytest_cache"}


@dataclass(frozen=True)
class Inputs:
    """What a stage's output is a function of: code fingerprint, live loads per raw table, ledger digest."""

    code: str
    raw: dict[str, str] = field(default_factory=dict)
    ledger: str = ""
    docs: bool = False  # dbt docs exist (the report links them only then)


@dataclass(frozen=True)
class Plan:
    """For one stage: do everything (``full``), only what follows from ``changed_raw``, or nothing."""

    stage: Stage
    full: bool
    changed_raw: tuple[str, ...] = ()
    reason: str = ""

    @property
    def nothing(self) -> bool:
        return not self.full and not self.changed_raw

    def line(self) -> str:
        """One line saying what this stage will do and why."""
        if self.full:
            return f"{self.stage}: everything ({self.reason})"
        if self.changed_raw:
            return f"{self.stage}: only what depends on {', '.join(f'raw.{t}' for t in self.changed_raw)}"
        return f"{self.stage}: skipped, nothing changed since the last {self.stage}"


def _files(root: Path, names: Sequence[str]) -> Iterable[Path]:
    for name in names:
        path = root / name if name else root
        if path.is_file():
            yield path
        elif path.is_dir():
            for p in sorted(path.rglob("*")):
                if p.is_file() and not _SKIP_PARTS.intersection(p.relative_to(root).parts):
                    yield p


def code_fingerprint(extra: Sequence[str] = ()) -> str:
    """sha256 over the dbt project's sources, the ``warehouse`` package, dbt's version and ``extra`` (e.g. dbt
    ``--vars``): a change to any of them makes the next run rebuild, republish and re-render everything."""
    from importlib.metadata import version

    digest = hashlib.sha256()
    for top, names in FINGERPRINTED:
        root = PROJECT_ROOT / top
        for path in _files(root, names):
            digest.update(str(path.relative_to(PROJECT_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(f"dbt-core {version('dbt-core')} dbt-duckdb {version('dbt-duckdb')}".encode())
    for arg in extra:
        digest.update(b"\0" + arg.encode())
    return digest.hexdigest()


def _user_config_inputs(settings: Settings) -> list[str]:
    """The user's dbt vars and override CSVs (regionstat.config): a change to either rebuilds like a code change."""
    out = [json.dumps(settings.dbt_vars, sort_keys=True, default=str)]
    overrides = settings.state_dir / "overrides"
    if overrides.is_dir():
        out += [f"{p.name}:{hashlib.sha256(p.read_bytes()).hexdigest()}" for p in sorted(overrides.glob("*.csv"))]
    return out


def current_inputs(settings: Settings, extra: Sequence[str] = ()) -> Inputs:
    """The inputs as they are now: code fingerprint, and from the live warehouse (read-only) per raw table a digest
    of its live load ids (the newest ``loaded`` row per source and per table id, as the loader keeps them)."""
    code = code_fingerprint([*extra, *_user_config_inputs(settings)])
    if not settings.warehouse_path.exists():
        return Inputs(code, docs=dbt_docs_exist(settings))
    from warehouse.db import connect_reader

    con = connect_reader(settings)
    try:
        has_ledger = con.execute(
            "select count(*) from information_schema.tables where table_schema = 'ops' and table_name = 'loads'"
        ).fetchone()
        if not has_ledger or not has_ledger[0]:
            return Inputs(code, docs=dbt_docs_exist(settings))
        live: dict[str, list[str]] = {}
        for raw_table, load_id in con.execute(
            "select distinct raw_table, load_id from ops.loads where status = 'loaded' qualify row_number() over "
            "(partition by source_name, table_id order by loaded_at desc, load_id desc) = 1 order by all"
        ).fetchall():
            live.setdefault(str(raw_table), []).append(str(load_id))
        ledger = con.execute("select count(*), max(loaded_at)::varchar, max(load_id) from ops.loads").fetchone()
    finally:
        con.close()
    raw = {t: hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16] for t, ids in sorted(live.items())}
    return Inputs(code, raw, json.dumps(ledger, default=str), dbt_docs_exist(settings))


def dbt_docs_exist(settings: Settings) -> bool:
    return (settings.docs_dir / "dbt" / "static_index.html").exists()


def _state_path(settings: Settings) -> Path:
    return settings.state_dir / STATE_NAME


def read_state(settings: Settings) -> dict[str, Inputs]:
    """stage -> the inputs it last completed with; empty when there is no (readable, current-version) record."""
    try:
        data = json.loads(_state_path(settings).read_text(encoding="utf-8"))
        if data.get("version") != STATE_VERSION:
            return {}
        return {stage: Inputs(**inputs) for stage, inputs in data.get("stages", {}).items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def record(settings: Settings, stage: Stage, inputs: Inputs) -> None:
    """Remember that ``stage`` completed with ``inputs`` (call only after it succeeded). The report records whether
    dbt docs existed when it was rendered (the transform DAG writes them after planning, before the report)."""
    stages = {name: asdict(i) for name, i in read_state(settings).items()}
    stages[stage] = asdict(replace(inputs, docs=dbt_docs_exist(settings)) if stage == "report" else inputs)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(
        _state_path(settings),
        json.dumps({"version": STATE_VERSION, "stages": stages}, indent=2, sort_keys=True) + "\n",
    )


def _outputs_present(settings: Settings, stage: Stage) -> bool:
    """A recorded stage whose output was deleted since must run again."""
    if stage == "build":
        from warehouse.provenance import dbt_manifest_path

        return settings.warehouse_path.exists() and dbt_manifest_path(settings) is not None
    if stage == "publish":
        from warehouse.publish import INDEX_NAME, read_index_checksums

        index = read_index_checksums(settings.marts_dir / INDEX_NAME)
        return bool(index) and all((settings.marts_dir / f"{name}.parquet").exists() for name in index)
    return (settings.reports_dir / "index.html").exists()


def plan(settings: Settings, stage: Stage, inputs: Inputs, state: Mapping[str, Inputs] | None = None) -> Plan:
    """What ``stage`` has to do for ``inputs``, compared with what it last completed with."""
    state = read_state(settings) if state is None else state
    last = state.get(stage)
    if last is None:
        return Plan(stage, True, reason=f"no record of a completed {stage}")
    if last.code != inputs.code:
        return Plan(stage, True, reason="the code or dbt arguments changed")
    if not _outputs_present(settings, stage):
        return Plan(stage, True, reason=f"the output of the last {stage} is missing")
    changed = tuple(sorted(t for t in set(last.raw) | set(inputs.raw) if last.raw.get(t) != inputs.raw.get(t)))
    if stage == "report" and not changed and last.ledger != inputs.ledger:
        return Plan(stage, True, reason="the load ledger changed")  # e.g. a new quarantine the report lists
    if stage == "report" and not changed and last.docs != inputs.docs:
        return Plan(stage, True, reason="dbt docs appeared or went since the last report")
    return Plan(stage, False, changed)


def _manifest(settings: Settings) -> dict:
    from warehouse.provenance import dbt_manifest_path

    path = dbt_manifest_path(settings)
    return json.loads(path.read_text(encoding="utf-8")) if path else {}


def dbt_selection(settings: Settings, build: Plan) -> str | None:
    """The dbt ``--select`` for a build plan: None = everything; ``source:<name>+`` per changed raw table (space-
    separated = union); "" = nothing (no changed raw table feeds a dbt source). Read from the last build's manifest,
    which matches the current project: a project change makes the plan ``full``."""
    if build.full:
        return None
    wanted = set(build.changed_raw)
    sources = sorted(
        f"source:{node['source_name']}.{node['name']}+"
        for node in _manifest(settings).get("sources", {}).values()
        if node.get("schema") == "raw" and str(node.get("identifier") or node.get("name")) in wanted
    )
    return " ".join(sources)


def marts_to_publish(settings: Settings, publish: Plan) -> set[str] | None:
    """The marts a publish plan must rewrite: None = all; those whose upstream raw tables include a changed one."""
    if publish.full:
        return None
    from warehouse.provenance import read_model_docs

    wanted = set(publish.changed_raw)
    return {name for name, doc in read_model_docs(settings).items() if wanted.intersection(doc.raw_tables)}


def plans(settings: Settings, inputs: Inputs) -> dict[Stage, Plan]:
    """The plan of every stage after the load, against one reading of the record."""
    state = read_state(settings)
    return {stage: plan(settings, stage, inputs, state) for stage in STAGES}


def nothing_changed(settings: Settings) -> bool:
    """True when the last build, publish and report already reflect the live loads and the code."""
    return all(p.nothing for p in plans(settings, current_inputs(settings)).values())
