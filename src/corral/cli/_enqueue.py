"""``corral enqueue NAME '{...}' --app MODULE:APP``: validated against the job's model.

The payload is input, given as an argument or ``--payload`` (``-`` reads it from stdin, so
``jobs show --json | jq .payload`` can feed it); ``--json`` is output, as in every command.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import orjson
import typer

from corral.cli._common import JsonOption, UrlOption, ops_app, run, say
from corral.errors import ConfigError
from corral.settings import parse_duration

PAYLOAD_HELP = "The job's arguments as a JSON object; - reads it from stdin."


def read_payload(argument: str | None, option: str | None) -> dict[str, Any]:
    """The job's arguments from the PAYLOAD argument or ``--payload`` (not both)."""
    if argument is not None and option is not None:
        raise ConfigError("give the payload once: as an argument or with --payload, not both")
    text = argument if argument is not None else option
    if text is None:
        return {}  # a job without arguments
    if text == "-":
        text = sys.stdin.read()
    try:
        args = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"the payload is not valid JSON: {exc}") from None
    if not isinstance(args, dict):
        raise ConfigError(
            f"the payload must be a JSON object of the job's arguments, got {type(args).__name__}"
        )
    return args


def enqueue(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Job name, as registered with @app.job.")
    ],
    app_target: Annotated[
        str,
        typer.Option("--app", metavar="MODULE:APP", help="The App defining the job (to validate)."),
    ],
    payload_arg: Annotated[
        str | None, typer.Argument(metavar="PAYLOAD", help=PAYLOAD_HELP + " Or --payload.")
    ] = None,
    payload: Annotated[
        str | None, typer.Option("--payload", metavar="JSON", help=PAYLOAD_HELP)
    ] = None,
    delay: Annotated[
        str | None, typer.Option(metavar="DURATION", help="Run later, e.g. 30s, 5m.")
    ] = None,
    priority: Annotated[
        int | None, typer.Option(metavar="N", help="0..2000, lower runs sooner.")
    ] = None,
    job_id: Annotated[
        str | None, typer.Option("--job-id", metavar="ID", help="Idempotency key.")
    ] = None,
    group: Annotated[str | None, typer.Option(metavar="GROUP", help="Group (tenant).")] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Enqueue a job by name; the arguments are validated like a call from Python."""
    args = read_payload(payload_arg, payload)
    app = ops_app(url, app_target)
    job_fn = app.registry.get(name)
    if job_fn is None:
        known = ", ".join(sorted(app.registry)) or "none"
        raise ConfigError(f"no job named {name!r} in {app_target} (known: {known})")
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
    verb = "enqueued" if handle.created else "already exists"
    say(result, as_json, f"{verb}: {handle.id} on {handle.queue}")
