"""Running Icarus Verilog on untrusted code, shared by curation (parse checks) and evaluation."""
from .sandbox import SandboxResult, iverilog_available, iverilog_version, run_sandboxed, compile_check

__all__ = ["SandboxResult", "iverilog_available", "iverilog_version", "run_sandboxed", "compile_check"]
