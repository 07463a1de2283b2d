"""``corral enqueue NAME --json '{...}'``: validated against the job's model."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer

from corral.cli._common import (
    AppOption,
    UrlOption,
    console,
    ops_app,
    print_json,
    run,
)
from corral.errors import ConfigError
from corral.settings import parse_duration


def enqueue(
    name: Annotated[str, typer.Argument(help="Job name, as registered with @app.job.")],
    payload: Annotated[
        str, typer.Option("--json", help="The job's arguments as a JSON object.")
    ] = "{}",
    app_target: AppOption = None,
    delay: Annotated[str | None, typer.Option(help="Run later, e.g. 30s, 5m.")] = None,
    priority: Annotated[int | None, typer.Option(help="0..2000, lower runs sooner.")] = None,
    job_id: Annotated[str | None, typer.Option("--job-id", help="Idempotency key.")] = None,
    group: Annotated[str | None, typer.Option(help="Group (tenant).")] = None,
    url: UrlOption = None,
    as_json: Annotated[
        bool, typer.Option("--print-json", help="Print the result as JSON.")
    ] = False,
) -> None:
    """Enqueue a job by name; the arguments are validated like a call from Python."""
    if not app_target:
        raise typer.BadParameter("--app MODULE:APP is needed to validate the payload")
    app = ops_app(url, app_target)
    job_fn = app.registry.get(name)
    if job_fn is None:
        known = ", ".join(sorted(app.registry)) or "none"
        raise ConfigError(f"no job named {name!r} in {app_target} (known: {known})")
    try:
        args = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"--json is not valid JSON: {exc}") from None
    if not isinstance(args, dict):
        raise ConfigError("--json must be an object of the job's arguments")
    options: dict[str, Any] = {}
    if delay:
        options["delay"] = parse_duration(delay)
    if priority is not None:
        options["priority"] = priority
    if job_id:
        options["job_id"] = job_id
    if group:
        options["group"] = group
    fn = job_fn.with_options(**options) if options else job_fn
    handle = run(app, lambda: fn.enqueue(**args))
    result = {"id": handle.id, "queue": handle.queue, "created": handle.created}
    if as_json:
        print_json(result)
    else:
        console.print(
            f"{'enqueued' if handle.created else 'already exists'}: {handle.id} on {handle.queue}"
        )
