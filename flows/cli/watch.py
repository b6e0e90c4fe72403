"""``xpcs-flows watch`` and ``xpcs-flows retry``: the new-file trigger on the command line.

``watch DIR --qmap QMAP`` runs a :class:`~flows.watch.watcher.Watcher` until SIGTERM
or Ctrl-C (exit 0 after a clean drain); ``watch --status [DIR] [--json]``
summarises the ledger; ``retry FILE...`` / ``retry --all-failed`` puts failed
files back in the ledger for the watcher to launch again.

The lead registers both in :mod:`flows.cli.app`. A launcher other than
:class:`~flows.watch.launcher.FlowsLauncher` may be put in
``ctx.obj["watch_launcher"]`` (tests do).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from flows.watch.launcher import FlowsLauncher, Launcher
from flows.watch.ledger import FileState, Ledger, LedgerEntry
from flows.watch.live import LIVE_DIR, describe_live
from flows.watch.scan import canonical_dir, canonical_file
from flows.watch.watcher import WatchConfig, Watcher
from xpcs_kernel.errors import UsageError

__all__ = ["retry_command", "watch_command"]

_DB_HELP = "State database (runs, history, the watcher ledger) [default: the per-user one]."


def _format_summary(summary: dict[str, Any]) -> str:
    where = summary["watch_dir"] or "all watched directories"
    lines = [f"ledger {summary['ledger']} ({where}): {summary['total']} files"]
    lines.append(
        "  " + "  ".join(f"{state.lower()} {n}" for state, n in summary["counts"].items() if n)
        if summary["total"]
        else "  (empty)"
    )
    if summary["active"]:
        lines.append("active runs:")
        for entry in summary["active"]:
            run = entry["run_id"] or "(launching)"
            lines.append(f"  {entry['path']}  run {run} on {entry['facility'] or '?'}")
    if summary["failed"]:
        lines.append("failed (retry with `xpcs-flows retry FILE` or `--all-failed`):")
        for entry in summary["failed"]:
            lines.append(f"  {entry['path']}: {entry['reason']}")
    return "\n".join(lines)


@click.command("watch")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--qmap", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The q-map file."
)
@click.option("--pattern", default="*.h5", show_default=True, help="Glob on file names.")
@click.option("--recursive", is_flag=True, help="Watch subdirectories too.")
@click.option(
    "--engine", type=click.Choice(["local", "globus"]), default="local", show_default=True
)
@click.option("--facility", default="auto", show_default=True, help="Deployment or 'auto'.")
@click.option(
    "--settle",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="Seconds a file must stay unchanged before it counts as complete.",
)
@click.option(
    "--done-marker",
    default=None,
    metavar="SUFFIX",
    help="A file is complete when FILE+SUFFIX exists (instead of --settle).",
)
@click.option(
    "--max-active",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Runs in flight at most; further files wait in the ledger.",
)
@click.option(
    "--open-timeout",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Seconds an unchanged HDF5 file may stay unopenable before it fails.",
)
@click.option("--tag", "tags", multiple=True, help="Extra run tag (repeatable).")
@click.option("--polling", is_flag=True, help="Poll the directory (NFS/GPFS without inotify).")
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), help=_DB_HELP)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Local facilities' directories [default: next to the database].",
)
@click.option(
    "--mode",
    type=click.Choice(["multitau", "twotime", "both"]),
    default=None,
    help="Correlation mode [default: the flow's].",
)
@click.option("--status", "show_status", is_flag=True, help="Summarise the ledger and exit.")
@click.option("--json", "as_json", is_flag=True, help="With --status: print JSON.")
@click.option(
    "--live",
    is_flag=True,
    help="Follow each file while it is written (partial g2 in DIR/.xpcs-live/); "
    "the run is still launched once, when the file is complete.",
)
@click.pass_context
def watch_command(
    ctx: click.Context,
    directory: Path | None,
    qmap: Path | None,
    pattern: str,
    recursive: bool,
    engine: str,
    facility: str,
    settle: float,
    done_marker: str | None,
    max_active: int,
    open_timeout: float,
    tags: Sequence[str],
    polling: bool,
    db_path: Path | None,
    workdir: Path | None,
    mode: str | None,
    show_status: bool,
    as_json: bool,
    live: bool = False,
) -> None:
    """Launch one flow run per new, complete data file in DIRECTORY, exactly once.

    Files already there (that the ledger does not know) are launched too.
    Stop with Ctrl-C or SIGTERM: runs already launched keep running, and
    the next start resumes following them.
    """
    with Ledger(db_path) as book:
        if show_status:
            watch_dir = None if directory is None else canonical_dir(directory)
            summary = book.summary(watch_dir=watch_dir)
            click.echo(json.dumps(summary, indent=2) if as_json else _format_summary(summary))
            if directory is not None and not as_json:  # live mode: the g2 so far
                for line in describe_live(Path(watch_dir or directory) / LIVE_DIR):
                    click.echo(line)
            return
        if directory is None or qmap is None:
            raise click.UsageError("DIRECTORY and --qmap are required (or use --status)")
        if not directory.is_dir():  # one line, before the observer trips on it
            raise click.BadParameter(f"'{directory}' does not exist", param_hint="DIRECTORY")
        obj = ctx.obj if isinstance(ctx.obj, dict) else {}
        launcher: Launcher = obj.get("watch_launcher") or FlowsLauncher(
            engine=engine,
            facility=facility,
            options=None if mode is None else {"mode": mode},
            db_path=db_path,
            workdir=workdir,
        )
        config = WatchConfig(
            directory=directory,
            qmap=qmap,
            pattern=pattern,
            recursive=recursive,
            settle=settle,
            done_marker=done_marker,
            max_active=max_active,
            tags=tuple(tags),
            open_timeout=open_timeout,
            polling=polling,
            live=live,
        )
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        watcher = Watcher(config, launcher=launcher, ledger=book)
        click.echo(f"watching {watcher.directory} for {pattern} (Ctrl-C to stop)", err=True)
        watcher.run()
        click.echo(_format_summary(book.summary(watch_dir=watcher.watch_dir)), err=True)


@click.command("retry")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--all-failed", is_flag=True, help="Retry every failed file.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --all-failed: only the files of this watched directory.",
)
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), help=_DB_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the re-queued entries as JSON.")
def retry_command(
    files: Sequence[Path],
    all_failed: bool,
    directory: Path | None,
    db_path: Path | None,
    as_json: bool,
) -> None:
    """Put failed FILES back in the ledger: the watcher checks and launches them again."""
    if bool(files) == all_failed:
        raise click.UsageError("give FILE arguments or --all-failed (not both)")
    with Ledger(db_path) as book:
        if all_failed:
            watch_dir = None if directory is None else canonical_dir(directory)
            failed = book.entries(watch_dir=watch_dir, states=[FileState.FAILED])
            paths = [e.path for e in failed]
        else:
            paths = [canonical_file(f) for f in files]
            for path in paths:  # check every file first: retry all or none
                entry = book.get(path)
                if entry.state is not FileState.FAILED:
                    raise UsageError(
                        f"{path} is {entry.state.value}; only FAILED files are retried",
                        argument="file",
                    )
        retried: list[LedgerEntry] = [book.retry(path) for path in paths]
    if as_json:
        click.echo(json.dumps([e.to_dict() for e in retried], indent=2))
        return
    for entry in retried:
        click.echo(f"{entry.path}: re-queued (attempt {entry.attempt})")
    if not retried:
        click.echo("no failed files")
    else:
        click.echo("a running `xpcs-flows watch` on their directory launches them")
