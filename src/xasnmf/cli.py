"""The ``xasnmf`` command line.

Subcommands are registered by the modules in :mod:`xasnmf.commands`; each
module has ``register(subparsers)`` adding its parsers with ``func`` set to a
callable taking the parsed namespace and returning an exit status.
User errors (:class:`xasnmf.errors.InputError`) are printed as one paragraph
and give exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap

from . import __version__
from .errors import XasnmfError

COMMAND_MODULES = (
    "xasnmf.commands.io",
    "xasnmf.commands.synth",
    "xasnmf.commands.core",
    "xasnmf.commands.compare",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xasnmf",
        description="Chemical domains in 2D-XAS image stacks (modified orthogonal NMF + bi-cross-validation).",
    )
    parser.add_argument("--version", action="version", version=f"xasnmf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except XasnmfError as exc:
        msg = textwrap.fill(str(exc), width=100, break_long_words=False, break_on_hyphens=False)
        print(f"xasnmf {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path we cannot read or write: say which, not where in the code
        where = exc.filename or "a file"
        msg = textwrap.fill(f"{where}: {exc.strerror or exc}. Fix: check that the path exists, is a file, "
                            "and that you may read (inputs) or write (outputs) it.", width=100,
                            break_long_words=False, break_on_hyphens=False)
        print(f"xasnmf {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
