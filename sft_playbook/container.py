"""Run curate_data.sh / run_sft.sh inside the course's NeMo container (nvcr.io/nvidia/nemo:24.12).

Standard library only: the shell scripts call this through ``scripts/container_launch.py`` BEFORE
any virtual environment exists, with whatever ``python3`` the machine has.

Decision (first match wins):

1. already inside the container (``SFT_PLAYBOOK_CONTAINER=1``, ``/opt/NeMo`` or ``NEMO_VERSION``):
   run here;
2. ``--no-container`` on the command line: run here;
3. ``--container`` on the command line: run in the container (an error if Docker is missing);
4. the mode from ``SFT_PLAYBOOK_CONTAINER_MODE`` or, if unset, ``mode:`` in
   ``configs/container.yaml``: ``always`` / ``never`` / ``auto``;
5. ``auto``: in the container when the ``docker`` client is on PATH, its daemon answers and
   ``nvidia-smi -L`` lists a GPU; here otherwise.

``--dry-run`` prints the settings (each with its help and default), the decision and the exact
``docker run`` command, then exits. Secrets are
passed as ``-e NAME`` (the value travels in docker's own environment, never on its command line
or in a log); the repository is mounted read-write as the working folder, so ``results/``,
``data/`` and ``.cache/`` (converted models) stay on the host, and the Hugging Face cache is
mounted from the host too.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from collections.abc import Callable, Mapping, Sequence

from .secrets import TokenFileError, parse_token_env

#: exit code of the launcher meaning "not launched: go on and run here" (read by the .sh scripts)
NOT_LAUNCHED = 200
FLAGS = ("--container", "--no-container", "--dry-run")
MODES = ("auto", "always", "never")
#: names passed into the container when set on the host or in token.env (values never printed)
PASSED_ENV = ("HF_TOKEN", "WANDB_API_KEY", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_MODE", "HF_ENDPOINT",
              "CUDA_VISIBLE_DEVICES", "NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST")
class ContainerError(RuntimeError):
    """A setting or a request cannot be honoured; the message says which and how to fix it."""


def _field(default, help_text: str):
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class Settings:
    """configs/container.yaml, typed and checked (``ContainerError`` naming the key). A frozen
    standard-library dataclass, not the package's pydantic settings (``sft_playbook.settings``):
    this file is read before any package is installed. Each field's help is in its metadata."""

    image: str = _field("nvcr.io/nvidia/nemo:24.12", "the NeMo container image")
    mode: str = _field("auto", "auto (container when Docker + an NVIDIA GPU are here), always, never")
    gpus: str = _field("all", "docker --gpus value, e.g. all or '\"device=0,1\"'")
    workdir: str = _field("/workspace/sft-playbook", "where the repository is mounted in the container")
    hf_cache: str = _field("~/.cache/huggingface", "host Hugging Face cache, mounted at /root/.cache/huggingface")
    docker_args: list[str] = field(default_factory=list, metadata={
        "help": "extra docker run arguments (in the file: one shell-quoted string)"})

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ContainerError(f"mode: {self.mode!r} is not one of {', '.join(MODES)}")
        if not self.image:
            raise ContainerError("image: empty")


#: the keys of configs/container.yaml (the fields of ``Settings``)
KEYS = tuple(f.name for f in fields(Settings))


def describe(settings: Settings) -> str:
    """Every setting with its help and, where it differs, its default (one per line).

    Returns:
        One line per field of ``Settings``, ``name: 'value'  # help`` plus `` (default: ...)`` where the
        value is not the default (``docker_args`` shown shell-quoted), joined by newlines, no trailing one.
    """
    out = []
    for f in fields(Settings):
        value = getattr(settings, f.name)
        default = f.default_factory() if f.default is MISSING else f.default
        shown = shlex.join(value) if isinstance(value, list) else value
        out.append(f"{f.name}: {shown!r}  # {f.metadata['help']}"
                   + ("" if value == default else f" (default: {default!r})"))
    return "\n".join(out)


def _scalar(raw: str, where: str) -> str:
    value = raw.split(" #", 1)[0].strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    elif value.startswith(("[", "{", "|", ">", "&", "*")):
        raise ContainerError(f"{where}: only plain scalar values are allowed in this file")
    return value


def load_settings(path: Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read the flat ``key: value`` YAML file (a subset of YAML, parsed without PyYAML); a key
    missing there takes ``Settings``' default.

    ``SFT_PLAYBOOK_CONTAINER_MODE`` and ``SFT_PLAYBOOK_CONTAINER_IMAGE`` override the file.

    Args:
        path: ``configs/container.yaml``; a missing file gives the defaults (plus the overrides).
        env: the environment to read the overrides from; ``None`` for ``os.environ``.

    Returns:
        The checked settings; ``docker_args`` split with ``shlex``, an empty ``gpus`` taken as the default.

    Raises:
        ContainerError: a line is not ``key: value`` at column 0, a key is unknown, a value is not a
            plain scalar (``[``, ``{``, ``|`` ...), the mode is not auto/always/never, or the image is
            empty (``file:line`` or the overriding variable named).
    """
    env = os.environ if env is None else env
    values: dict[str, str] = {}
    if path.is_file():
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            where = f"{path}:{lineno}"
            if line[0].isspace() or ":" not in stripped:
                raise ContainerError(f"{where}: expected 'key: value' at the start of the line")
            key, raw = stripped.split(":", 1)
            key = key.strip()
            if key not in KEYS:
                raise ContainerError(f"{where}: unknown key {key!r} (known: {', '.join(KEYS)})")
            values[key] = _scalar(raw, where)
    if env.get("SFT_PLAYBOOK_CONTAINER_MODE"):
        values["mode"] = env["SFT_PLAYBOOK_CONTAINER_MODE"].strip()
    if env.get("SFT_PLAYBOOK_CONTAINER_IMAGE"):
        values["image"] = env["SFT_PLAYBOOK_CONTAINER_IMAGE"].strip()
    if "mode" in values and values["mode"] not in MODES:
        raise ContainerError(f"container mode {values['mode']!r} is not one of {', '.join(MODES)} "
                             f"(set in {path} 'mode:' or SFT_PLAYBOOK_CONTAINER_MODE)")
    if "image" in values and not values["image"]:
        raise ContainerError(f"{path}: 'image' is empty")
    if "gpus" in values and not values["gpus"]:
        del values["gpus"]
    if "docker_args" in values:
        values["docker_args"] = shlex.split(values["docker_args"])   # type: ignore[assignment]
    return Settings(**values)


def split_flags(args: Sequence[str]) -> tuple[set[str], list[str]]:
    """Separate the launcher's own flags from the arguments that are forwarded to the script.

    Returns:
        ``(ours, forwarded)``: the set of the launcher flags present (``--container``,
        ``--no-container``, ``--dry-run``) and the other arguments in their order.

    Raises:
        ContainerError: both ``--container`` and ``--no-container`` are given.
    """
    ours = {a for a in args if a in FLAGS}
    if {"--container", "--no-container"} <= ours:
        raise ContainerError("--container and --no-container contradict each other; give one")
    return ours, [a for a in args if a not in FLAGS]


# ----- detection ---------------------------------------------------------------------------------

def inside_container(env: Mapping[str, str], exists: Callable[[str], bool] = os.path.exists) -> bool:
    """The same test as scripts/bootstrap.sh's _bs_in_nemo_container.

    Returns:
        True when ``SFT_PLAYBOOK_CONTAINER=1``, ``/opt/NeMo`` exists or ``NEMO_VERSION`` is set non-empty.
    """
    return env.get("SFT_PLAYBOOK_CONTAINER") == "1" or exists("/opt/NeMo") or bool(env.get("NEMO_VERSION"))


def _runs_ok(argv: list[str], timeout: float = 15.0) -> bool:
    try:
        return subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=timeout, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass
class Probe:
    """What the machine offers. Each callable is replaceable in tests."""
    which: Callable[[str], str | None] = shutil.which
    runs_ok: Callable[[list[str]], bool] = _runs_ok

    def docker(self) -> tuple[bool, str]:
        """Whether Docker can be used here: (True, reason), or (False, what is missing and how to fix it).

        Returns:
            ``(ok, reason)``: False when ``docker`` is not on PATH or ``docker info`` fails (or takes
            over 15 s), with a one-line reason saying what to fix.
        """
        if not self.which("docker"):
            return False, "no 'docker' command on PATH"
        if not self.runs_ok(["docker", "info"]):
            return False, "'docker info' failed (daemon not running, or no permission: add yourself to the 'docker' group)"
        return True, "Docker is available"

    def gpu(self) -> tuple[bool, str]:
        """Whether an NVIDIA GPU is visible (``nvidia-smi -L`` lists one): (ok, one-line reason).

        Returns:
            ``(ok, reason)``: False when ``nvidia-smi`` is not on PATH or ``nvidia-smi -L`` fails.
        """
        if not self.which("nvidia-smi"):
            return False, "no NVIDIA driver ('nvidia-smi' not found)"
        if not self.runs_ok(["nvidia-smi", "-L"]):
            return False, "'nvidia-smi -L' lists no GPU"
        return True, "NVIDIA GPU present"


@dataclass
class Decision:
    """Whether to re-launch the script inside the container (``launch``) and why (``reason``, logged)."""
    launch: bool
    reason: str


def decide(flags: set[str], settings: Settings, env: Mapping[str, str], probe: Probe,
           exists: Callable[[str], bool] = os.path.exists) -> Decision:
    """Run inside the NeMo container or here, from the flags, the settings and what the machine has.

    Order: already inside the container -> here; ``--no-container`` -> here; ``--container`` or
    mode ``always`` -> container (Docker required); mode ``never`` -> here; auto -> container only
    when Docker works and an NVIDIA GPU is present.

    Args:
        flags: the command-line flags given (``--container``, ``--no-container``).
        settings: the config's container settings.
        env: the environment (to detect being inside the container already).
        probe: what the machine offers (Docker, GPU); replaceable in tests.
        exists: ``os.path.exists``, replaceable in tests.

    Returns:
        The decision and its reason.

    Raises:
        ContainerError: the container is required (flag or mode ``always``) but Docker cannot be used.
    """
    if inside_container(env, exists):
        return Decision(False, "already inside the NeMo container")
    if "--no-container" in flags:
        return Decision(False, "--no-container given")
    if "--container" in flags or settings.mode == "always":
        why = "--container given" if "--container" in flags else "container mode is 'always'"
        ok, detail = probe.docker()
        if not ok:
            raise ContainerError(f"{why}, but Docker cannot be used: {detail}. Install Docker and the NVIDIA "
                                 "Container Toolkit, or run without the container (--no-container).")
        return Decision(True, why)
    if settings.mode == "never":
        return Decision(False, "container mode is 'never'")
    ok_docker, why_docker = probe.docker()
    if not ok_docker:
        return Decision(False, f"auto: {why_docker}")
    ok_gpu, why_gpu = probe.gpu()
    if not ok_gpu:
        return Decision(False, f"auto: {why_gpu}")
    return Decision(True, "auto: Docker and an NVIDIA GPU are present")


# ----- the command -------------------------------------------------------------------------------

def _token_file_values(repo_root: Path) -> dict[str, str]:
    """token.env's values (``secrets.parse_token_env``, the one parser); {} without the file.

    Returns:
        Variable name -> value for every line of ``<repo_root>/token.env`` (not only PASSED_ENV names).

    Raises:
        ContainerError: a line is malformed (``TokenFileError``'s message: file:line, never the value).
    """
    token_file = repo_root / "token.env"
    if not token_file.is_file():
        return {}
    try:
        return parse_token_env(token_file)
    except TokenFileError as exc:
        raise ContainerError(str(exc)) from None


def token_names(repo_root: Path, env: Mapping[str, str]) -> list[str]:
    """Names (never values) of PASSED_ENV set in the environment or with a value in token.env.

    Returns:
        The names, sorted alphabetically, each once.

    Raises:
        ContainerError: ``<repo_root>/token.env`` has a malformed line (the message names file:line).
    """
    names = {k for k in PASSED_ENV if env.get(k)}
    names |= {k for k, v in _token_file_values(repo_root).items() if k in PASSED_ENV and v}
    return sorted(names)


def host_hf_cache(settings: Settings, repo_root: Path) -> Path:
    """The host folder mounted as the container's Hugging Face cache: ``settings.hf_cache`` with ``~``
    expanded, relative paths taken from ``repo_root``.

    Returns:
        An absolute path (not created here; ``main`` creates it before ``docker run``).
    """
    path = Path(os.path.expanduser(settings.hf_cache))
    return path if path.is_absolute() else repo_root.resolve() / path


def build_command(script: str, args: Sequence[str], settings: Settings, repo_root: Path,
                  env: Mapping[str, str], tty: bool = False) -> list[str]:
    """The exact ``docker run`` argv that runs ``bash <script> <args>`` in the container.

    Returns:
        The argv list: ``docker run --gpus ... --rm [-it]``, the repository and Hugging Face cache
        mounts, ``-e NAME`` for each passed secret (names only, never values), ``docker_args``, then
        ``<image> bash <script> <args...>``.

    Raises:
        ContainerError: ``<repo_root>/token.env`` has a malformed line.
    """
    repo_root = repo_root.resolve()
    hf_cache = host_hf_cache(settings, repo_root)
    cmd = ["docker", "run", "--gpus", settings.gpus, "--ipc=host", "--ulimit", "memlock=-1",
           "--ulimit", "stack=67108864", "--rm"]
    if tty:
        cmd.append("-it")
    cmd += ["-v", f"{repo_root}:{settings.workdir}", "-w", settings.workdir,
            "-v", f"{hf_cache}:/root/.cache/huggingface",
            "-e", "SFT_PLAYBOOK_CONTAINER=1", "-e", "HF_HOME=/root/.cache/huggingface",
            "-e", f"NEMO_HOME={settings.workdir}/.cache/nemo"]
    for name in token_names(repo_root, env):
        cmd += ["-e", name]  # value taken from docker's environment (see run()), never on argv
    cmd += list(settings.docker_args)
    cmd += [settings.image, "bash", script, *args]
    return cmd


def child_env(repo_root: Path, env: Mapping[str, str]) -> dict[str, str]:
    """docker's own environment: ours plus token.env's values (for the ``-e NAME`` flags).

    Returns:
        A copy of ``env`` plus each PASSED_ENV value from token.env that ``env`` does not set (non-empty).

    Raises:
        ContainerError: ``<repo_root>/token.env`` has a malformed line.
    """
    out = dict(env)
    for key, value in _token_file_values(repo_root).items():
        if key in PASSED_ENV and value and not out.get(key):
            out[key] = value
    return out


def _say(message: str) -> None:
    print(f"[container] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None,
         probe: Probe | None = None, repo_root: Path | None = None,
         runner: Callable[[list[str], dict[str, str]], int] | None = None) -> int:
    """``container_launch.py SCRIPT [args...]``; returns the docker exit code, or NOT_LAUNCHED.

    Returns:
        The process exit code: ``NOT_LAUNCHED`` (200) when the script should run here; 0 after
        ``--dry-run``; 2 for a usage or settings error (printed as one ``ERROR:`` line); 130 on
        Ctrl-C; otherwise docker's exit code (200 from inside is turned into 1).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    env = dict(os.environ if env is None else env)
    probe = probe or Probe()
    repo_root = repo_root or Path(__file__).resolve().parent.parent
    if not argv:
        _say("usage: container_launch.py SCRIPT [--container|--no-container] [--dry-run] [args...]")
        return 2
    script, rest = argv[0], argv[1:]
    try:
        flags, forwarded = split_flags(rest)
        settings = load_settings(repo_root / "configs" / "container.yaml", env)
        decision = decide(flags, settings, env, probe)
    except ContainerError as exc:
        _say(f"ERROR: {exc}")
        return 2
    if "--dry-run" in flags:
        _say("settings (configs/container.yaml, SFT_PLAYBOOK_CONTAINER_MODE/IMAGE):\n" + describe(settings))
    if not decision.launch:
        if "--dry-run" in flags:
            _say(f"not using the container ({decision.reason}); would run here: "
                 f"{shlex.join(['bash', script, *forwarded])}")
            return 0
        return NOT_LAUNCHED
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    try:
        cmd = build_command(script, forwarded, settings, repo_root, env, tty=tty)
    except ContainerError as exc:
        _say(f"ERROR: {exc}")
        return 2
    _say(f"running in {settings.image} ({decision.reason}); --no-container runs here instead")
    print(shlex.join(cmd), flush=True)
    if "--dry-run" in flags:
        return 0
    host_hf_cache(settings, repo_root).mkdir(parents=True, exist_ok=True)  # else docker creates it as root
    runner = runner or (lambda c, e: subprocess.call(c, env=e))
    try:
        rc = runner(cmd, child_env(repo_root, env))
    except KeyboardInterrupt:
        return 130
    if rc == NOT_LAUNCHED:  # never let the script mistake a failure inside for "not launched"
        rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
