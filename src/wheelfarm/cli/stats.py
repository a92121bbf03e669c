"""Statistics: ``stats`` prints the counts, ``logs ingest`` reads access logs into them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from wheelfarm.app.parts import store_transaction
from wheelfarm.cli.console import out, settings_of, until_stopped
from wheelfarm.stats.hits import DAY, load_secret
from wheelfarm.stats.logs import LogIngester
from wheelfarm.stats.report import summary
from wheelfarm.stats.sources import follow_lines, read_lines
from wheelfarm.store.database import open_store
from wheelfarm.words import plural

__all__ = ["logs", "stats"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--top", default=20, show_default=True, help="How many projects to list.")
@click.pass_context
def stats(ctx: click.Context, as_json: bool, top: int) -> None:
    """Downloads and searches: totals, top projects, projects searched but not downloaded."""
    with store_transaction(settings_of(ctx)) as connection:
        found = summary(connection, int(time.time() // DAY), limit=top)
    if as_json:
        print(json.dumps(found, indent=2))
        return
    out.print(f"downloads: {found['downloads_total']} in all, {found['downloads_30d']} in 30 days")
    out.print(f"searches in 30 days: {found['searches_30d']}")
    for project in found["top_projects"]:
        out.print(
            f"  {project['name']}: {project['downloads_30d']} in 30 days, "
            f"{project['downloads_total']} in all",
            markup=False,
            highlight=False,
        )
    if found["missed_projects"]:
        out.print("searched, not downloaded (30 days):")
    for project in found["missed_projects"]:
        searches = plural(project["searches_30d"], "search", "searches")
        out.print(f"  {project['name']}: {searches}", markup=False)
    for dimension, values in found["shares"].items():
        shown = ", ".join(f"{value} {count}" for value, count in list(values.items())[:5])
        out.print(f"{dimension}: {shown or '-'}", markup=False, highlight=False)


@click.group()
def logs() -> None:
    """Web server access logs."""


@logs.command()
@click.argument("file", type=click.Path(path_type=Path, allow_dash=True))
@click.option("--follow", is_flag=True, help="Keep reading the file as it grows (Ctrl-C stops).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def ingest(ctx: click.Context, file: Path, follow: bool, as_json: bool) -> None:
    """Count the hits in a combined-format access log (nginx, Apache; plain or gzip; - is stdin).

    Safe to run again on the same file: each line is counted once.
    """
    settings = settings_of(ctx)
    path = None if str(file) == "-" else file
    if follow and path is None:
        raise click.UsageError("--follow needs a file, not standard input")
    engine = open_store(settings.database_url)
    ingester = LogIngester(
        engine, load_secret(settings.data_dir), keep_days=settings.stats_keep_days, child=True
    )
    try:
        if follow and path is not None:
            with until_stopped("stopped following") as stopping:
                try:
                    ingester.feed(follow_lines(path, stopping, ingester.flush))
                finally:
                    stopping.set()
        else:
            ingester.feed(read_lines(path))
        ingester.flush()
    finally:
        ingester.close()
        engine.dispose()
    report = ingester.report
    if as_json:
        print(json.dumps(report.as_json(), indent=2))
        return
    out.print(
        f"read {plural(report.lines, 'line')}: {plural(report.hits, 'hit')} counted, "
        f"{report.duplicates} already counted, {sum(report.skipped.values())} skipped"
    )
    for reason, count in sorted(report.skipped.items(), key=lambda item: (-item[1], item[0])):
        out.print(f"  {reason}: {count}", markup=False, highlight=False)
