"""The `reval` command: sync through Dagster in process; status, versions, rollback, diff, gc, verify.

Every command takes `--json` (one JSON object on stdout, nothing else there). Exit codes
follow the contract: 0 ok, 1 other failure, 2 unknown version, 3 blocked by a check,
4 refused by the environment guard, 5 corrupt files; a usage error is EX_USAGE (64), outside it.

Over 400 lines on purpose: it is the command's eleven subcommands, each a short click function that only
parses, calls `pipeline.operations` and prints, side by side so their options and messages agree.
"""

from __future__ import annotations

import functools
import getpass
import json
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reval_assets.errors import BLOCKED, CORRUPT, FAILED, OK, REFUSED, ReleaseBlocked, RevalError
from reval_assets.pipeline import operations
from reval_assets.pipeline.gate import check_store
from reval_assets.pipeline.guard import GuardRefused, guarded
from reval_assets.pipeline.recover import recover as recover_catalog
from reval_assets.pipeline.room import is_disk_full
from reval_assets.pipeline.runtime import Runtime
from reval_assets.settings import Settings
from reval_assets.sources.export import write_export
from reval_assets.sources.shapes import REAL_SHAPES
from reval_assets.store.snapshots import UnknownVersionError

EX_USAGE = 64  # sysexits.h: the command was used wrongly (click's own 2 is the contract's "unknown version")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # no hard wraps: paths and commands stay copyable


class Exit(Exception):
    def __init__(self, code: int, message: str, payload: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.payload = code, message, payload or {}


def command(*, writes: bool, gate: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Adds --json, builds the runtime, checks the store is what the settings say (`pipeline.gate`:
    a reader only warns), and turns known failures into a message and exit code."""
    return functools.partial(_command, writes=writes, gate=gate)


def _command(fn: Callable[..., Any], *, writes: bool, gate: bool) -> Callable[..., Any]:
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout, nothing else.")
    @functools.wraps(fn)
    def wrapper(as_json: bool, **kwargs: Any) -> None:
        runtime = None
        try:
            runtime = Runtime(Settings.from_env(), read_only=not writes)
            warnings = check_store(runtime, writing=writes) if gate else []
            for warning in warnings:
                err.print(f"[bold yellow]{_shown(warning)}[/]")
            payload = fn(runtime, as_json=as_json, **kwargs)
            if warnings:
                payload = {**payload, "warnings": warnings}
            code = OK
        except Exit as stop:
            payload, code = {**stop.payload, "error": stop.message}, stop.code
            err.print(f"[bold red]{_shown(stop.message)}[/]")
        except Exception as error:  # noqa: BLE001 - every failure gets a message and exit code 1
            code, message = _explain(error)
            payload = {"error": message}
            err.print(f"[bold red]{_shown(message)}[/]")
        except KeyboardInterrupt:
            code, message = FAILED, "interrupted; run `reval status` to see what is live (a change is all or nothing)"
            payload = {"error": message, "interrupted": True}
            err.print(f"[bold red]{_shown(message)}[/]")
        finally:
            if runtime is not None:
                runtime.close()
        if as_json:
            sys.stdout.write(json.dumps(payload, default=str) + "\n")
        sys.exit(code)

    return wrapper


def _explain(error: Exception) -> tuple[int, str]:
    """A failure's exit code and message: a `RevalError` carries both; the rest are the database's or the OS's."""
    if isinstance(error, RevalError):
        return error.exit_code, error.explained()
    if is_disk_full(error) or "database or disk is full" in str(error):
        return FAILED, (f"disk full ({' '.join(str(error).split())[:200]}): free some space (`reval gc` drops old "
                        "versions) and try again")
    if isinstance(error, sa.exc.OperationalError):
        return FAILED, (f"cannot reach the live store ({str(error.orig).strip().splitlines()[0]}); check "
                        "REVAL_LIVE_URL and that the database is up. Nothing was changed.")
    return FAILED, f"{type(error).__name__}: {error}"


class UsageMistake(click.ClickException):
    """A usage error of click's, said in one line (and as {"error": ...} with --json); exits EX_USAGE."""

    exit_code = EX_USAGE

    def __init__(self, error: click.UsageError, as_json: bool):
        said = " ".join(error.format_message().split())
        where = error.ctx.command_path if error.ctx else "reval"
        super().__init__(f"{said}{'' if said.endswith(('.', '?')) else '.'} `{where} --help` shows the usage.")
        self.as_json = as_json

    def show(self, file: Any = None) -> None:
        err.print(f"[bold red]{_shown(self.message)}[/]")
        if self.as_json:
            sys.stdout.write(json.dumps({"error": self.message}) + "\n")


class Commands(click.Group):
    """The `reval` group: click's usage errors (unknown option or command, missing argument, bad value)
    become a `UsageMistake`; a bare `reval` still shows the help, with EX_USAGE too."""

    as_json = False

    def main(self, args: Sequence[str] | None = None, *rest: Any, **options: Any) -> Any:
        self.as_json = "--json" in (sys.argv[1:] if args is None else args)
        return super().main(args, *rest, **options)

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        with self._usage():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with self._usage():
            return super().invoke(ctx)

    @contextmanager
    def _usage(self) -> Iterator[None]:
        try:
            yield
        except click.exceptions.NoArgsIsHelpError as error:
            error.exit_code = EX_USAGE
            raise
        except click.UsageError as error:
            raise UsageMistake(error, self.as_json) from None


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Revalidation data sync: versioned snapshots, checked releases, O(1) rollback."""


@main.command()
@click.option("--confirm", default=None, help="In staging/prod: the environment's name, to allow publishing.")
@click.option("--reason", default="manual sync", show_default=True, help="Why; recorded on the version.")
@click.option("--batches", default=None, help="Only re-sync these batches, e.g. 0,3,7 (others are reused).")
@click.option("--no-publish", is_flag=True, help="Stage and check a candidate, but do not publish it.")
@click.option("--allow-drift", "allow_drift", default="", metavar="REASON",
              help="Let a known large change pass the drift check; the reason is recorded in the check and the audit.")
@command(writes=True)
def sync(runtime: Runtime, *, as_json: bool, confirm: str | None, reason: str, batches: str | None,
         no_publish: bool, allow_drift: str) -> dict:
    """Materialise the assets through Dagster, stage a candidate, check it, publish it."""
    from reval_assets.run import run_sync

    settings = runtime.settings
    actor = _actor()
    if not no_publish:
        try:
            guarded(runtime, "publishing", None, actor, reason, confirm, audited_as="sync")
        except GuardRefused as refusal:
            raise Exit(REFUSED, str(refusal), {"version": None, "published": False, "blocked_by": [], "rows": {},
                                               "seconds": 0.0, "refused": True}) from None
    selected = _parse_batches(batches, settings.batches)
    started = time.perf_counter()
    label = f"[{settings.env.value.upper()}] sync of {len(selected)} of {settings.batches} batches"
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a termination aborts (and is audited) like Ctrl-C
    with runtime.live.writer_lock("sync"), err.status(label) as spinner:
        result = run_sync(runtime, batches=selected, reason=reason, actor=actor, confirm=confirm,
                          publish=not no_publish, progress=lambda step: spinner.update(f"{label}: {step}…"),
                          allow_drift_reason=allow_drift)
    payload = {**result.as_dict(), "seconds": round(time.perf_counter() - started, 3)}
    if result.blocked_by:
        failed = [(name, message.removeprefix(f"{name}: ")) for name, message in
                  zip(result.blocked_by, result.messages, strict=True)]
        blocked = ReleaseBlocked(failed, live=result.live_version, version=result.version)
        raise Exit(BLOCKED, blocked.explained(), payload)
    if result.error:
        raise Exit(REFUSED if result.refused else FAILED, result.error, payload)
    if not as_json:
        state = "published" if result.published else "staged (not published)"
        out.print(f"[bold green]{result.version} {state}[/] in {payload['seconds']:.1f}s")
        _rows_table(result.rows)
    return payload


@main.command()
@command(writes=False)
def status(runtime: Runtime, *, as_json: bool) -> dict:
    """Environment, live version, rows per entity, and who published it when and why."""
    info = operations.status(runtime)
    if not as_json:
        env_style = "bold white on red" if info["env"] == "prod" else "bold"
        out.print(f"environment  [{env_style}] {info['env'].upper()} [/]")
        out.print(f"live store   {_shown(info['live_url'])}", soft_wrap=True)  # one line: copyable
        out.print(f"live version {info['live_version'] or '(none published yet)'}")
        if info["live_version"]:
            when = (info["published_at"] or "")[:19].replace("T", " ")
            out.print(f"published    {when} UTC by {_shown(str(info['published_by']))}: "
                      f"{_shown(str(info['reason']))}", soft_wrap=True)
            _rows_table(info["rows"])
    return info


@main.command()
@command(writes=False)
def versions(runtime: Runtime, *, as_json: bool) -> dict:
    """Every retained version: id, status, parent, created/published, rows per entity."""
    rows = operations.versions(runtime)
    if not as_json:
        out.print(_versions_table(rows, out.width))
    return {"versions": rows}


# Layouts of `reval versions`, richest first; the first that fits the terminal is used.
_VERSION_LAYOUTS = (
    {"parent": True, "when": "both", "counts": ("doctors", "connections", "recommendations"), "reason": True},
    {"parent": False, "when": "long", "counts": ("doctors", "connections", "recommendations"), "reason": True},
    {"parent": False, "when": "short", "counts": ("doctors", "conns", "recs"), "reason": True},
    {"parent": False, "when": "short", "counts": ("doctors", "conns", "recs"), "reason": False},
)


def _versions_table(rows: list[dict], width: int) -> Table:
    """Version ids are never cut (they are what you type next): a narrow terminal drops columns instead."""
    for layout in _VERSION_LAYOUTS:
        table = _versions_layout(rows, layout)
        # SIMPLE_HEAD without edge padding: one space at each edge, three between columns
        needed = sum(c.min_width or 0 for c in table.columns) + 3 * (len(table.columns) - 1) + 2
        if needed <= width:
            break
    notes = []
    if layout["when"] != "both" and any(not r["published_at"] for r in rows):
        notes.append("*never published: when it was created")
    if layout is not _VERSION_LAYOUTS[0]:
        notes.append("a wider terminal shows more columns; --json shows everything")
    table.caption = "; ".join(notes) or None
    return table


def _versions_layout(rows: list[dict], layout: dict) -> Table:
    columns: list[tuple[str, list[str]]] = [
        ("version", [r["version"] for r in rows]),
        ("status", [r["status"] + (" 📌" if r["pinned"] else "") for r in rows]),
    ]
    if layout["parent"]:
        columns.append(("parent", [r["parent"] or "" for r in rows]))
    created = [_short(r["created_at"]) for r in rows]
    published = [_short(r["published_at"]) for r in rows]
    if layout["when"] == "both":
        columns += [("created", created), ("published", published)]
    else:
        cut = 0 if layout["when"] == "long" else 5  # "2026-11-24 19:27" or "11-24 19:27"
        columns.append(("published", [p[cut:] or f"*{c[cut:]}" for p, c in zip(published, created, strict=True)]))
    for name, entity in zip(layout["counts"], ("doctors", "connections", "recommendations"), strict=True):
        columns.append((name, [f"{r['rows'][entity] or 0:,}" for r in rows]))
    table = Table(title="versions (oldest first; times UTC)", box=box.SIMPLE_HEAD, pad_edge=False)
    for i, (name, cells) in enumerate(columns):
        # no_wrap plus a min_width of the widest cell: never truncated, and measured as such
        table.add_column(name, no_wrap=True, justify="right" if i >= len(columns) - 3 else "left",
                         min_width=max(cell_len(c) for c in [name, *cells]))
    if layout["reason"]:
        table.add_column("reason", overflow="fold", min_width=12)
    for i, r in enumerate(rows):
        cells = [_shown(column[i]) for _, column in columns]
        if layout["reason"]:
            cells.append(_shown(r["reason"] or ""))
        table.add_row(*cells, style={"live": "bold green", "blocked": "red"}.get(r["status"], ""))
    return table


@main.command()
@click.argument("version")
@click.option("--reason", required=True, help="Why; recorded in the audit log.")
@click.option("--confirm", default=None, help="In staging/prod: the environment's name.")
@command(writes=True)
def rollback(runtime: Runtime, *, as_json: bool, version: str, reason: str, confirm: str | None) -> dict:
    """Re-point live to VERSION in one transaction."""
    previous = operations.rollback(runtime, version, actor=_actor(), reason=reason, confirm=confirm)
    if not as_json:
        out.print(f"[bold green]live is now {version}[/] (was {previous})")
    return {"live_version": version, "previous": previous}


@main.command()
@click.argument("a")
@click.argument("b")
@command(writes=False)
def diff(runtime: Runtime, *, as_json: bool, a: str, b: str) -> dict:
    """Per entity: rows added, removed and changed (by key) from A to B."""
    changes = operations.diff(runtime, a, b)
    if not as_json:
        title = f"{a} → {b}"
        table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, min_width=len(title))
        table.add_column("entity", no_wrap=True)
        for name in ("added", "removed", "changed"):
            table.add_column(name, justify="right", no_wrap=True)
        for entity, c in changes.items():
            table.add_row(entity, f"{c['added']:,}", f"{c['removed']:,}", f"{c['changed']:,}")
        out.print(table)
    return {"a": a, "b": b, "entities": changes}


@main.command()
@click.argument("version")
@click.option("--reason", required=True, help="Why; recorded in the audit log.")
@click.option("--confirm", default=None, help="In staging/prod: the environment's name.")
@command(writes=True)
def publish(runtime: Runtime, *, as_json: bool, version: str, reason: str, confirm: str | None) -> dict:
    """Publish VERSION, a staged candidate whose checks passed (what a stage-only night leaves for a person)."""
    row = runtime.live.version(version)
    if row is None:
        raise UnknownVersionError(version)
    if row["checks_passed"] is False:
        failed = [c["name"] for c in json.loads(row["checks"] or "[]") if not c["passed"]]
        raise Exit(BLOCKED, f"{version} is blocked: its checks {', '.join(failed) or '(unknown)'} failed, so it "
                   "cannot be published. `reval versions` lists the staged candidates; fix the source and sync again.",
                   {"version": version, "blocked_by": failed})
    previous = runtime.live.live_version()
    operations.publish(runtime, version, actor=_actor(), reason=reason, confirm=confirm)
    if not as_json:
        out.print(f"[bold green]{version} published[/] (was {previous or 'nothing'})")
    return {"version": version, "published": True, "previous": previous}


@main.command()
@click.option("--reason", default="recover the catalog", show_default=True, help="Recorded in the audit log.")
@click.option("--confirm", default=None, help="In staging/prod: the environment's name.")
@click.option("--live", "live_version", default=None, metavar="VERSION",
              help="Make VERSION live (when the journal does not say which version was live).")
@command(writes=True, gate=False)
def recover(runtime: Runtime, *, as_json: bool, reason: str, confirm: str | None, live_version: str | None) -> dict:
    """Rebuild a lost or empty catalog, and the live pointer, from the snapshot home's manifests."""
    result = recover_catalog(runtime, actor=_actor(), reason=reason, confirm=confirm, live_version=live_version)
    if not as_json:
        out.print(f"[bold green]recovered {len(result.recovered)} versions[/]; live is "
                  f"{result.live_version or 'nothing (the journal names no live version: use --live VERSION)'}")
        for version, problem in result.skipped.items():
            err.print(f"[yellow]left out {version}: {_shown(problem)}[/]")
    return {"recovered": result.recovered, "skipped": result.skipped, "live_version": result.live_version}


@main.command()
@click.option("--keep", default=10, show_default=True, help="Published versions to keep (plus live and pinned).")
@click.option("--dry-run", is_flag=True, help="Only report what would be deleted.")
@click.option("--confirm", default=None, help="In staging/prod: the environment's name.")
@command(writes=True)
def gc(runtime: Runtime, *, as_json: bool, keep: int, dry_run: bool, confirm: str | None) -> dict:
    """Drop versions, files and tables that no retained version reaches."""
    report = operations.gc(runtime, keep=keep, dry_run=dry_run, actor=_actor(), confirm=confirm)
    if not as_json:
        verb = "would drop" if dry_run else "dropped"
        out.print(f"{verb} {len(report['versions_dropped'])} versions, {report['files_deleted']} files "
                  f"({report['bytes_freed']:,} bytes), {report['tables_dropped']} tables, "
                  f"{report['evidence_folders_deleted']} GMC evidence folders "
                  f"({report['evidence_bytes_freed']:,} bytes); "
                  f"kept {len(report['retained'])} versions")
    return report


@main.command()
@click.argument("version", required=False)
@command(writes=False)
def verify(runtime: Runtime, *, as_json: bool, version: str | None) -> dict:
    """Re-hash every file of VERSION (default: live) against its manifest."""
    report = operations.verify(runtime, version)
    report["ok"] = not report["problems"]
    if report["problems"]:
        raise Exit(CORRUPT, f"{len(report['problems'])} damaged file(s) or table(s) in {report['version']}: "
                   + "; ".join(report["problems"]) + ". Roll back to a version that verifies, or re-sync.", report)
    if not as_json:
        out.print(f"[green]{report['version']}: {report['files']} files and {report['tables']} tables verified[/]")
    return report


@main.command()
@click.argument("version")
@click.option("--reason", required=True, help="Why; recorded in the audit log.")
@click.option("--unpin", is_flag=True, help="Let gc judge VERSION by --keep again.")
@command(writes=True)
def pin(runtime: Runtime, *, as_json: bool, version: str, reason: str, unpin: bool) -> dict:
    """Keep VERSION through every gc (a known-good version to roll back to), or with --unpin stop keeping it."""
    with runtime.live.writer_lock("pin"):
        runtime.live.set_pinned(version, not unpin, actor=_actor(), env=runtime.settings.env.value, reason=reason)
    if not as_json:
        out.print(f"{version} {'unpinned: gc keeps it only by --keep' if unpin else 'pinned: gc keeps it'}")
    return {"version": version, "pinned": not unpin}


@main.command("sample-export")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--real", is_flag=True, help="Each input in a shape the original services send (envelopes, "
              "Jackson dates, the summary payload, mongoexport documents), not in reval's own spelling.")
@click.option("--shape", "shapes", multiple=True, metavar="INPUT=SHAPE",
              help="One input in one shape, e.g. gmc_doctors=soap (repeatable; overrides --real).")
@command(writes=False, gate=False)
def sample_export(runtime: Runtime, *, as_json: bool, folder: Path, real: bool, shapes: tuple[str, ...]) -> dict:
    """Write the synthetic population (REVAL_DOCTORS, REVAL_SEED, REVAL_FAULTS) as the export files, in FOLDER."""
    from reval_assets.sources.synthetic import SyntheticSource  # only here: a rollback never needs it

    chosen = dict(REAL_SHAPES) if real else {}
    for item in shapes:
        name, _, shape = item.partition("=")
        chosen[name.strip()] = shape.strip()
    settings = runtime.settings
    source = SyntheticSource(doctors=settings.doctors, seed=settings.seed, faults=settings.faults,
                             designated_bodies=settings.designated_bodies)
    try:
        write_export(source.extract(), folder, shapes=chosen)
    except KeyError as error:
        raise Exit(FAILED, f"--shape: {error.args[0]}") from None
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    if not as_json:
        out.print(f"wrote {settings.doctors:,} doctors to {folder}: {', '.join(files)}")
    return {"folder": str(folder), "files": files, "shapes": chosen}


def _parse_batches(text: str | None, total: int) -> list[int]:
    """None (no --batches): all of them. Else ASCII batch numbers only: int() would also take '١' or '３'."""
    if text is None:
        return list(range(total))
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or not all(part.isascii() and part.isdigit() for part in parts):
        raise Exit(FAILED, f"--batches takes batch numbers from 0 to {total - 1} separated by commas, like 0,3,7; "
                   f"got {text!r}")
    chosen = sorted({int(part) for part in parts})
    bad = [b for b in chosen if not 0 <= b < total]
    if bad or not chosen:
        raise Exit(FAILED, f"--batches must be between 0 and {total - 1} (REVAL_BATCHES={total}); got {text!r}")
    return chosen


def _rows_table(rows: dict) -> None:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("entity", no_wrap=True)
    table.add_column("rows", justify="right", no_wrap=True)
    for entity, n in rows.items():
        table.add_row(entity, f"{n or 0:,}")
    out.print(table)


# Characters that could forge a line or restyle the terminal: C0 and C1 controls (newline, ESC...), DEL,
# line and paragraph separators, and bidirectional overrides.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _shown(text: object) -> str:
    """User text (a reason, an actor, a message) for the terminal: each unprintable character as its escape
    (a newline as \\n, ESC as \\x1b) and no rich markup. --json output keeps the text exact."""
    printable = _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))
    return escape(printable)


def _short(value: str | None) -> str:
    return (value or "")[:16].replace("T", " ")  # to the minute: enough to tell versions apart by eye


def _actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "reval"


if __name__ == "__main__":
    main()
