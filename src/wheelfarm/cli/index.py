"""The published index: ``write`` it, ``serve`` it."""

from __future__ import annotations

from pathlib import Path

import click

from wheelfarm.app.parts import publish_index
from wheelfarm.app.serving import open_index_server
from wheelfarm.cli.console import err, out, progress_bar, settings_of, until_stopped
from wheelfarm.words import plural

__all__ = ["serve", "write"]


@click.command()
@click.option("--all", "everything", is_flag=True, help="Regenerate every project and page.")
@click.pass_context
def write(ctx: click.Context, everything: bool) -> None:
    """Publish the index: the projects changed since the last write (or, with --all, all)."""
    settings = settings_of(ctx)
    if everything:
        with progress_bar("writing the index") as progress:
            report = publish_index(settings, everything=True, progress=progress)
    else:
        report = publish_index(settings, everything=False)
    for name in report.changed[:20]:
        out.print(f"  {name}", markup=False, highlight=False)
    if len(report.changed) > 20:
        out.print(f"  ... and {len(report.changed) - 20} more")
    site = "; site pages written" if report.site else ""
    out.print(
        f"wrote {plural(report.projects, 'project')} to {settings.www_dir}: "
        f"{plural(report.written, 'file')} written, "
        f"{report.removed} removed{site}"
    )
    for name, reason in sorted(report.failed.items()):
        err.print(f"not published: {name}: {reason}", markup=False, highlight=False)
    if report.failed:
        raise SystemExit(1)  # the rest is published; these stay marked for the next write


@click.command()
@click.option(
    "--root",
    type=click.Path(path_type=Path, file_okay=False),
    help="The published tree [default: <data_dir>/www].",
)
@click.option("--host", help="Address to listen on [default: the 'host' setting].")
@click.option("--port", type=int, help="Port to listen on [default: the 'port' setting].")
@click.option("--access-log", is_flag=True, help="Log 'METHOD path status' for each request.")
@click.option("--no-stats", is_flag=True, help="Do not record downloads and searches.")
@click.pass_context
def serve(
    ctx: click.Context,
    root: Path | None,
    host: str | None,
    port: int | None,
    access_log: bool,
    no_stats: bool,
) -> None:
    """Serve the published index (simple pages, wheels, project pages) over HTTP until stopped."""
    server = open_index_server(
        settings_of(ctx), root=root, host=host, port=port, access_log=access_log, stats=not no_stats
    )
    out.print(f"serving {server.root} at {server.url}; Ctrl-C stops")
    # uvicorn stops gracefully on SIGINT/SIGTERM, then raises the signal again for the handler
    # that was there before it: ours, so that a stop is a clean exit (status 0).
    with until_stopped("stopped"):
        server.run()
