"""What every entry point does first: parse --config and key=value overrides, set up logging,
read token.env, print the effective config."""
from __future__ import annotations

import argparse
import errno
import logging
import sys
from typing import Any, Callable, Sequence

from .config import ConfigError, dump_config, load_config
from .io import InputError, OutputError, output_error
from .log import setup_logging
from .paths import resolve
from .secrets import TokenFileError, load_token_env


def build_parser(prog: str, description: str, default_config: str, steps: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog="Overrides: key=value (nested keys with dots, values parsed as YAML), e.g. train.max_steps=50",
    )
    if steps:
        parser.add_argument("step", nargs="?", default="all",
                            help=f"one of {', '.join(steps)} or all (default: all, in order)")
        parser.set_defaults(_steps=(*steps, "all"))
    parser.add_argument("--config", default=default_config, help=f"YAML config (default: {default_config})")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--print-config", action="store_true", help="print the effective config and exit")
    parser.add_argument("--debug", action="store_true",
                        help="on a bad input, output or config error, show the full traceback (default: one line)")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    return parser


def start(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> tuple[dict[str, Any], argparse.Namespace]:
    """Parse arguments and return (effective config, args). Exits with a clear message on bad input."""
    args = parser.parse_args(argv)
    # argparse puts a bare key=value into 'step' when no step is given; move it back.
    if getattr(args, "step", None) and "=" in args.step:
        args.overrides.insert(0, args.step)
        args.step = "all"
    if getattr(args, "step", None) and args.step not in args._steps:
        parser.error(f"unknown step {args.step!r}; choose from {', '.join(args._steps)}")
    log = setup_logging(args.log_level)
    try:
        cfg = load_config(resolve(args.config), args.overrides)
        load_token_env()
    except (ConfigError, TokenFileError) as exc:
        log.error("%s", exc)
        sys.exit(2)
    log.info("effective config (%s%s):\n%s", args.config,
             f" + {len(args.overrides)} override(s)" if args.overrides else "", dump_config(cfg).rstrip())
    if args.print_config:
        sys.exit(0)
    return cfg, args


def run_main(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run an entry point's ``main(argv)``; a bad input file (``InputError``: file:line), an output
    that cannot be written (``OutputError``: "no space left on device writing PATH"), a bad config
    or any other OS error naming a file end with ONE line on stderr and exit code 2 (input,
    config) or 1 (output); the traceback only with ``--debug``."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        return main(argv)
    except (InputError, ConfigError, TokenFileError) as exc:
        if debug:
            raise
        logging.getLogger("sft_playbook").error("%s", exc)
        return 2
    except OutputError as exc:
        if debug:
            raise
        logging.getLogger("sft_playbook").error("%s", exc)
        return 1
    except OSError as exc:
        if debug or (not exc.filename and not (len(exc.args) == 1 and isinstance(exc.args[0], str))):
            raise
        if not exc.filename:   # raised with a message of its own: FileNotFoundError("x not found: run ...")
            logging.getLogger("sft_playbook").error("%s", exc.args[0])
            return 1
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):   # a write outside the io helpers (torch.save, ...)
            msg = str(output_error(exc, exc.filename))
        else:
            msg = f"{exc.strerror or type(exc).__name__}: {exc.filename}"
        logging.getLogger("sft_playbook").error("%s", msg)
        return 1


def fail(message: str, code: int = 1) -> None:
    logging.getLogger("sft_playbook").error("%s", message)
    sys.exit(code)
