"""Entry point of the `mfmc` command: registers the command groups and turns errors into exit codes.

Every mfmc error is printed as one short message (plus an optional help line) with no traceback: keys and
embeddings may live in local variables, so tracebacks are only shown when MFMC_DEBUG=1.
"""

from __future__ import annotations

import os
import sys

import typer

from mfmc.cli.anonymize import anonymize_command
from mfmc.cli.eval import eval_command
from mfmc.cli.faces import doctor_command, faces_command
from mfmc.cli.platform import register as register_platform
from mfmc.cli.pool import pool_app
from mfmc.cli.rules import rules_app
from mfmc.errors import MfmcError

app = typer.Typer(
    name="mfmc",
    help="My Face, My Choice: per-face access rules and verified deepfakes for shared photos.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(rules_app, name="rules", rich_help_panel="Rules")
for _name, _command in (("faces", faces_command), ("anonymize", anonymize_command), ("eval", eval_command),
                        ("doctor", doctor_command)):
    app.command(_name, rich_help_panel="Faces and fakes")(_command)
app.add_typer(pool_app, name="pool", rich_help_panel="Faces and fakes")
register_platform(app)  # init, user, enroll, friend, upload, tag, consent, render, demo, …
for _info in (*app.registered_commands, *app.registered_groups):
    _info.rich_help_panel = _info.rich_help_panel or "Platform"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code: 0 ok, 1 runtime error, 2 invalid input."""
    try:
        # Without standalone mode, click returns the code of a `typer.Exit` instead of raising it.
        result = app(args=argv, standalone_mode=False)
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
        if code is not None and hasattr(err, "show"):
            err.show()
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
