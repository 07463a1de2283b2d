"""``--help`` in plain words: usage lines and option lists people can read and copy.

Typer's own help shows Python type tags (``<bool>``, ``<list[str]>``), wraps required
arguments in ``{braces}`` and draws boxes that a pipe or a narrow terminal turns into noise.
These command classes write the help as text instead, through Click's formatter:

    Usage: corral dlq replay [OPTIONS] QUEUE [JOB_ID]

      Send dead jobs back to waiting ...

    Options:
      --app MODULE:APP  The App defining the jobs ...  [required]
      --limit N         ...  [default: 20]

A required argument is its bare name, an optional one is in ``[brackets]``, a required option
appears in the usage line and says ``[required]``; every option's value is a metavar (set
where a command declares it, else the parameter's name). Usage errors use the same usage line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:  # Typer vendors Click; these types are only annotations here
    from typer._click.core import Context, Parameter

VALUE_METAVARS = {int: "N", float: "N"}
F = TypeVar("F", bound=Callable[..., Any])


def value_metavar(param: Parameter) -> str:
    """What stands for an option's value: its declared metavar, else ``N`` for a number,
    else its name in capitals (``--group GROUP``)."""
    if param.metavar:
        return param.metavar
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    return VALUE_METAVARS.get(annotation, (param.name or "value").upper())  # type: ignore[arg-type]


def is_argument(param: Parameter) -> bool:
    return param.param_type_name == "argument"


def argument_name(param: Parameter) -> str:
    name = param.metavar or (param.name or "").upper()
    if param.nargs != 1:
        name += "..."
    return name if param.required else f"[{name}]"


def option_names(param: Parameter) -> str:
    """``-y, --yes``; ``--color / --no-color`` for a pair; ``--limit N``."""
    names = ", ".join(sorted(param.opts, key=len))
    if param.secondary_opts:
        names += " / " + ", ".join(param.secondary_opts)
    if not getattr(param, "is_flag", False):
        names += f" {value_metavar(param)}"
    return names


def shown_default(param: Parameter) -> str | None:
    """An option's default worth saying: not for flags, nor for "not given" (None/empty)."""
    if is_argument(param) or getattr(param, "is_flag", False) or param.required:
        return None
    default = param.default
    if default is None or default == "" or isinstance(default, bool | list | tuple):
        return None
    return str(default)


def describe(param: Parameter) -> str:
    text = getattr(param, "help", None) or ""
    extra = []
    default = shown_default(param)
    if default is not None:
        extra.append(f"default: {default}")
    if param.required:
        extra.append("required")
    return f"{text}  [{'; '.join(extra)}]" if extra else text


def usage_pieces(command: typer.core.TyperCommand, ctx: Context) -> list[str]:
    pieces = ["[OPTIONS]"]
    params = command.get_params(ctx)
    for param in params:
        if not is_argument(param) and param.required:
            pieces.append(option_names(param))
    pieces += [argument_name(p) for p in params if is_argument(p)]
    return pieces


def help_text(command: TyperCommand | TyperGroup, ctx: Context) -> str:
    formatter = ctx.make_formatter()
    command.format_usage(ctx, formatter)
    if command.help:
        formatter.write_paragraph()
        with formatter.indentation():
            formatter.write_text(command.help)
    params = [p for p in command.get_params(ctx) if not getattr(p, "hidden", False)]
    arguments = [(argument_name(p), describe(p)) for p in params if is_argument(p)]
    options = [(option_names(p), describe(p)) for p in params if not is_argument(p)]
    for title, rows in (("Arguments", arguments), ("Options", options)):
        if rows:
            with formatter.section(title):
                formatter.write_dl(rows)
    if isinstance(command, CorralGroup):
        rows = command.summaries(ctx, formatter.width)
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
    return formatter.getvalue().rstrip("\n")


class CorralCommand(TyperCommand):
    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        return usage_pieces(self, ctx)

    def get_help(self, ctx: Context) -> str:
        return help_text(self, ctx)


class CorralGroup(TyperGroup):
    def get_help(self, ctx: Context) -> str:
        return help_text(self, ctx)

    def summaries(self, ctx: Context, width: int) -> list[tuple[str, str]]:
        """(name, one line of help) per visible subcommand, for the group's help."""
        names = [n for n in self.list_commands(ctx) if not self.commands[n].hidden]
        if not names:
            return []
        limit = width - 6 - max(len(n) for n in names)
        return [(n, self.commands[n].get_short_help_str(limit)) for n in names]


class CorralTyper(typer.Typer):
    """A ``typer.Typer`` whose group and commands write their help as above; plain usage
    errors, no shell completion, no pretty tracebacks (errors are one line), help when run
    without a command."""

    def __init__(self, **settings: Any) -> None:
        settings.setdefault("cls", CorralGroup)
        settings.setdefault("no_args_is_help", True)
        settings.setdefault("add_completion", False)
        settings.setdefault("pretty_exceptions_enable", False)
        # plain errors too: Typer's rich ones print the help as a side effect of building it
        settings.setdefault("rich_markup_mode", None)
        super().__init__(**settings)

    def command(self, *args: Any, **settings: Any) -> Callable[[F], F]:
        settings.setdefault("cls", CorralCommand)
        register: Callable[[F], F] = super().command(*args, **settings)
        return register
