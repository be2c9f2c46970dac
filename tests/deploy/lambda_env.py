"""Running a deployable artefact's entry command the way Lambda would, against the emulator."""

from __future__ import annotations

import os
import pathlib
import sys
from collections.abc import Mapping

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def lambda_env(
    runtime_api: str, handler: str, task_root: pathlib.Path, **extra: str
) -> dict[str, str]:
    """The environment Lambda gives a runtime process (and nothing from ours)."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "_HANDLER": handler,
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_LAMBDA_FUNCTION_NAME": "function",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/function",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123456789abcdef",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        **extra,
    }


def bare_python() -> str:
    """This Python's real interpreter (not the venv's), as a plain program."""
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def write_script(path: pathlib.Path, body: str) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def merged(env: Mapping[str, str], **extra: str) -> dict[str, str]:
    return {**env, **extra}
