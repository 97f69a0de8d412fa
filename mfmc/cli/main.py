"""Entry point of the `mfmc` command: registers the command groups and turns errors into exit codes.

Every mfmc error is printed as one short message (plus an optional help line) with no traceback: keys and
embeddings may live in local variables, so tracebacks are only shown when MFMC_DEBUG=1.

Start-up is kept short: the command modules import only typer and the standard library at the top, and a
command line registers (and imports) only what it names: one command of `COMMANDS`, or the platform commands;
`mfmc --help`, `mfmc` alone and unknown names register everything.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Callable, Mapping
from typing import Annotated

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from mfmc import __version__
from mfmc.errors import MfmcError

FACES = "Faces and fakes"
# name -> (module, attribute, help panel, is a group of subcommands)
COMMANDS: dict[str, tuple[str, str, str, bool]] = {
    "rules": ("mfmc.cli.rules", "rules_app", "Rules", True),
    "render": ("mfmc.cli.render", "render_command", FACES, False),
    "faces": ("mfmc.cli.faces", "faces_command", FACES, False),
    "anonymize": ("mfmc.cli.anonymize", "anonymize_command", FACES, False),
    "eval": ("mfmc.cli.eval", "eval_command", FACES, False),
    "doctor": ("mfmc.cli.faces", "doctor_command", FACES, False),
    "pool": ("mfmc.cli.pool", "pool_app", FACES, True),
    "graph": ("mfmc.cli.graph", "graph_app", "Platform", True),
    "open": ("mfmc.cli.web", "open_command", "Platform", False),
    "serve": ("mfmc.cli.server", "serve_command", "Server", False),
    "worker": ("mfmc.cli.server", "worker_command", "Server", False),
}


def _version(value: bool) -> None:
    if value:
        print(f"mfmc {__version__}")
        raise typer.Exit(0)


def _root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """My Face, My Choice: per-face access rules and verified deepfakes for shared photos."""


def build_app(only: str | None = None, *, platform: bool = True) -> typer.Typer:
    """The `mfmc` app: every command, or for a faster start only `only` (one of `COMMANDS`; `""` for none of
    them) and, when `platform`, the platform commands."""
    app = typer.Typer(name="mfmc", no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
    app.callback()(_root)
    for name, (module, attr, panel, group) in COMMANDS.items():
        if only is not None and name != only:
            continue
        target = getattr(importlib.import_module(module), attr)
        if group:
            app.add_typer(target, name=name, rich_help_panel=panel)
        else:
            app.command(name, rich_help_panel=panel)(target)
    if platform:
        from mfmc.cli.platform import register as register_platform

        register_platform(app)  # init, user, keys, enroll, friend, upload, tag, consent, demo, …
        for info in (*app.registered_commands, *app.registered_groups):
            info.rich_help_panel = info.rich_help_panel or "Platform"
    return app


def app_for(argv: list[str]) -> typer.Typer:
    """The smallest app that runs `argv`: the named command of `COMMANDS` alone, or the platform commands alone
    when one of them is named; everything for `--help`, `--version`, no command or an unknown one."""
    name = next(iter(argv), "")
    if not name or name.startswith("-"):
        return build_app()  # root options apply to the whole app
    if name in COMMANDS:
        return build_app(name, platform=False)
    platform = build_app("", platform=True)
    names = {info.name for info in (*platform.registered_commands, *platform.registered_groups)}
    return platform if name in names else build_app()


class _Argument(TyperArgument):
    """An argument shown as NAME (or [NAME]) in the usage line instead of typer's `{name}`."""

    def _usage_display_name(self) -> str:
        name = (self.metavar or self.name or "").upper()
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")


def _quiet_help(make: Callable[[typer.Context], TyperOption | None], ctx: typer.Context) -> TyperOption | None:
    """A command's `--help` flag (made on demand by click) without the `<bool>` type either."""
    option = make(ctx)
    if option is not None:
        option.metavar = ""
    return option


def _polish(command: TyperGroup | TyperCommand) -> None:
    """Help screens without type noise: no `<bool>` after flags, arguments as NAME in usage lines."""
    for param in command.params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
        elif type(param) is TyperArgument:
            param.__class__ = _Argument
    command.get_help_option = functools.partial(_quiet_help, command.get_help_option)  # type: ignore[method-assign]
    for sub in getattr(command, "commands", {}).values():
        _polish(sub)


# commands that never touch a model: a bad MFMC_* vision variable does not stop them (nor `--help`)
NO_VISION = frozenset({"rules", "graph"})


def _uses_vision(args: list[str]) -> bool:
    name = next(iter(args), "")
    return bool(name) and not name.startswith("-") and name not in NO_VISION and "--help" not in args


def configure_vision(environ: Mapping[str, str]) -> None:
    """The vision settings of this process (models, devices, the model cache folder) from the MFMC_* variables:
    read here, once, and handed to the library (`mfmc.vision.settings`; imports only the standard library)."""
    from mfmc.vision.settings import VisionSettings, configure

    configure(VisionSettings.from_env(environ))


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code: 0 ok, 1 runtime error, 2 invalid input."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--version"]:  # answered before any command module is imported
        print(f"mfmc {__version__}")
        return 0
    try:
        if _uses_vision(args):
            configure_vision(os.environ)
        command = typer.main.get_command(app_for(args))
        _polish(command)
        # Without standalone mode, click returns the code of a `typer.Exit` instead of raising it.
        result = command.main(args=args, prog_name="mfmc", standalone_mode=False)
    except MfmcError as err:
        print(err.render(), file=sys.stderr)
        return err.exit_code
    except typer.Exit as done:
        return done.exit_code
    except (typer.Abort, KeyboardInterrupt):
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # click usage errors carry their own exit code
        code = getattr(err, "exit_code", None)
        show: Callable[[], None] | None = getattr(err, "show", None)
        if code is not None and show is not None:
            show()
            return code
        if os.environ.get("MFMC_DEBUG") == "1":
            raise
        print(f"error: internal error: {type(err).__name__}: {err}", file=sys.stderr)
        print("  help: rerun with MFMC_DEBUG=1 for a traceback", file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry: exit with main()'s code."""
    sys.exit(main())


if __name__ == "__main__":
    run()
