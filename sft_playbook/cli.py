"""What every entry point does first: parse the step, --config and key=value overrides (in any
order, also under torchrun), set up logging, read token.env, name the run folder, build the typed
settings (``sft_playbook.settings``: every key checked before any work) and say in one line which
config is used (every value with its default and help only with --print-config)."""
from __future__ import annotations

import argparse
import errno
import logging
import sys
from typing import Any
from collections.abc import Callable, Sequence

from .config import ConfigError, dump_config, load_config, load_yaml
from .io import InputError, OutputError, output_error
from .log import setup_logging
from .paths import derived_run_name, resolve
from .secrets import TokenFileError, load_token_env


def build_parser(prog: str, description: str, default_config: str, steps: Sequence[str] = (),
                 settings: str | None = None) -> argparse.ArgumentParser:
    """The shared command line of the entry scripts: ``[step] [--config] [--log-level]
    [--print-config] [--debug] [key=value ...]``.

    Args:
        prog: program name shown in usage lines (e.g. ``run_sft.py``).
        description: help text shown above the options.
        default_config: the ``--config`` default (a YAML path relative to the repository).
        steps: the step names the script accepts as its first positional argument ("all" is
            added); empty: the script has no step argument.
        settings: which typed settings the config is (curate, sft, eval;
            ``sft_playbook.settings.KINDS``), checked by ``start``.

    Returns:
        The parser (not yet parsed).
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Overrides: key=value (nested keys with dots, values parsed as YAML), e.g. train.max_steps=50;\n"
               "a section given whole (train={lr: 2e-4}) is merged into the file's key by key; a key given twice\n"
               "keeps the last value (with a warning); the step, the options and the overrides may come in any order.",
    )
    if steps:
        parser.add_argument("step", nargs="?", default="all",
                            help=f"one of {', '.join(steps)} or all (default: all, in order)")
        parser.set_defaults(_steps=(*steps, "all"))
    parser.set_defaults(_settings=settings)
    parser.add_argument("--config", default=default_config, help=f"YAML config (default: {default_config})")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--print-config", action="store_true",
                        help="print the effective config (YAML, on stdout: every value, its help and, where it "
                             "differs, its default) and exit")
    parser.add_argument("--debug", action="store_true",
                        help="on a bad input, output or config error, show the full traceback (default: one line)")
    # torch.distributed.launch (not torchrun) appends --local-rank=N; the rank comes from the environment.
    parser.add_argument("--local-rank", "--local_rank", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The step (if the parser has steps), options and key=value overrides, wherever each stands:
    `train --config F a=1`, `--config F train a=1`, `a=1 train b=2` all parse the same.

    Returns:
        The parsed namespace: ``step`` (``"all"`` when none is named, for a parser with steps),
        ``overrides`` (the ``key=value`` words, in order) and the options. An unknown step, or more
        than one, ends the process through ``parser.error`` (exit code 2, usage on stderr).
    """
    args = parser.parse_intermixed_args(argv)
    steps = getattr(args, "_steps", None)
    if steps is not None:
        words = [args.step, *args.overrides]  # the first bare word went to 'step', whatever it is
        named = [w for w in words if "=" not in w]
        if len(named) > 1:
            parser.error(f"one step at a time: got {', '.join(map(repr, named))} "
                         f"(overrides are key=value; steps: {', '.join(steps)})")
        args.step = named[0] if named else "all"
        args.overrides = [w for w in words if "=" in w]
        if args.step not in steps:
            parser.error(f"unknown step {args.step!r}; choose from {', '.join(steps)}")
    return args


def start(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None,
          name_run: bool = False) -> tuple[Any, argparse.Namespace]:
    """Parse arguments and return (settings, args): the typed settings
    (``sft_playbook.settings.CurateSettings`` / ``SftSettings`` / ``EvalSettings``, by the parser's
    ``settings``; SFT when ``name_run``), every key checked before any work. Exits 2 with one clear
    line naming the key on a bad config or override.

    name_run: the config has `output_dir` / `run_name` (SFT); unless run_name is given on the
    command line, a config that differs from its file gets its own run folder
    (`paths.derived_run_name`); `args.file_run_name` keeps the file's name.

    Returns:
        ``(settings, args)``: the typed settings object (the plain config dict when the parser
        declares no settings kind and ``name_run`` is False) and the parsed namespace, with
        ``file_run_name`` added. ``--print-config`` prints the config and exits 0 instead.
    """
    from .settings import build, declares, describe
    args = parse_args(parser, argv)
    log = setup_logging(args.log_level)
    try:
        path = resolve(args.config)
        kind = getattr(args, "_settings", None) or ("sft" if name_run else None)
        cfg = load_config(path, args.overrides, declares(kind) if kind else None)
        load_token_env()
    except (ConfigError, TokenFileError) as exc:
        log.error("%s", exc)
        sys.exit(2)
    args.file_run_name = None
    if name_run:
        file_cfg = load_yaml(path)
        args.file_run_name = file_cfg.get("run_name")
        if not any(o.lstrip("+").split("=", 1)[0].strip() == "run_name" for o in args.overrides):
            cfg["run_name"] = derived_run_name(file_cfg, cfg)
    if kind is not None:
        try:
            cfg = build(kind, cfg)
        except ConfigError as exc:
            log.error("%s", exc)
            sys.exit(2)
    if args.print_config:
        sys.stdout.write(f"# effective config: {args.config}"
                         + (f" + {' '.join(args.overrides)}" if args.overrides else "") + "\n"
                         + ("# key: value  # help (default: D, where the value is not the default)\n" + describe(cfg)
                            if kind is not None else dump_config(cfg)))
        sys.exit(0)
    log.info("config: %s%s (full effective config: --print-config)", args.config,
             f" + {' '.join(args.overrides)}" if args.overrides else " (no overrides)")
    return cfg, args


def run_steps(steps: Sequence[str], handlers: dict[str, Callable[[], Any]], errors: tuple[type[BaseException], ...],
              label: str = "") -> int:
    """Run ``handlers[step]()`` for each step in order, each announced as ``=== step: NAME ===``;
    one of ``errors`` ends the run with its message on one line and exit code 2.

    Returns:
        The exit code: 0 when every step ran, 2 when a step raised one of ``errors`` (logged).

    Raises:
        ValueError: a step has no handler (before any step runs).
    """
    log = logging.getLogger("sft_playbook")
    unknown = [s for s in steps if s not in handlers]
    if unknown:
        raise ValueError(f"unknown step {unknown[0]!r} (steps: {', '.join(handlers)})")
    try:
        for step in steps:
            log.info("=== step: %s%s ===", step, label)
            handlers[step]()
    except errors as exc:
        log.error("%s", exc)
        return 2
    return 0


def run_main(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run an entry point's ``main(argv)``; a bad input file (``InputError``: file:line), an output
    that cannot be written (``OutputError``: "no space left on device writing PATH"), a bad config
    or any other OS error naming a file end with ONE line on stderr and exit code 2 (input,
    config) or 1 (output); the traceback only with ``--debug``.

    Returns:
        The exit code: ``main``'s own, 2 for a bad input, config or token file, 1 for an output or
        OS error naming a file (or carrying its own message).

    Raises:
        InputError: with ``--debug``: the one ``main`` raised, re-raised for its traceback.
        ConfigError: with ``--debug``, re-raised as InputError is.
        TokenFileError: with ``--debug``, re-raised as InputError is.
        OutputError: with ``--debug``, re-raised as InputError is.
        OSError: with ``--debug``, or always when it names no file and has no message of its own.
    """
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
