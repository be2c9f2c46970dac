"""``serve --image`` without a container engine: how the engine is chosen, how the image's
CMD is read, the ``run`` command line (as Lambda runs a container), and one-line errors.
A fake engine (a shell script) stands in for docker / podman; test_image.py runs the real
one."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from duplexlambda.emulator.cli import ENGINE_ENV, container_image
from duplexlambda.emulator.supervisor import ContainerImage

from .lambda_env import ROOT, write_script


def fake_engine(tmp_path: pathlib.Path, cmd: str | None) -> str:
    """An engine whose ``image inspect`` finds the image with CMD ``cmd`` (JSON), or not."""
    if cmd is None:
        body = 'echo "Error: inspecting object: image not known" >&2; exit 125'
    else:
        body = f"echo '{cmd}'"
    return str(write_script(tmp_path / "engine", body))


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "duplexlambda", "serve", *args, "--port", "0",
         "--runtime-api-port", "0"],
        capture_output=True, text=True, timeout=30, cwd=ROOT, env=env, check=False,
    )  # fmt: skip


def test_the_handler_defaults_to_the_images_cmd(tmp_path: pathlib.Path) -> None:
    engine = fake_engine(tmp_path, '["app:app","--asgi"]')
    image, handler = container_image("my-image", None, engine)
    assert (image.engine, image.image, image.handler, handler) == (
        (engine,),
        "my-image",
        None,
        "app:app",
    )
    image, handler = container_image("my-image", "digest.handler", f"{engine} --flag")
    assert (image.engine, image.handler, handler) == (
        (engine, "--flag"),
        "digest.handler",
        "digest.handler",
    )


def test_the_engine_comes_from_the_environment(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENGINE_ENV, fake_engine(tmp_path, '["csv_stats.handler"]'))
    assert container_image("img", None, None)[1] == "csv_stats.handler"


def test_no_engine_at_all(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LookupError, match="install Docker or podman"):
        container_image("img", None, None)


def test_no_cmd_and_no_handler(tmp_path: pathlib.Path) -> None:
    with pytest.raises(LookupError, match="has no CMD: give the HANDLER"):
        container_image("img", None, fake_engine(tmp_path, "null"))


def test_run_is_as_lambda_runs_a_container() -> None:
    argv = ContainerImage(("podman", "--runtime", "runc"), "img:1", "echo.handler").run_argv(
        "duplexlambda-1-1-abc", {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "_HANDLER": "x"}
    )
    assert argv == [
        "podman", "--runtime", "runc", "run", "--rm", "--name", "duplexlambda-1-1-abc",
        "--network", "host", "--read-only", "--tmpfs", "/tmp:rw,exec,size=512m,mode=1777",
        "--user", "993:993", "--env", "AWS_LAMBDA_RUNTIME_API", "--env", "_HANDLER",
        "img:1", "echo.handler",
    ]  # fmt: skip
    # No handler: the image's own CMD runs.
    assert ContainerImage(("docker",), "img:1").run_argv("n", {})[-1] == "img:1"
    assert ContainerImage(("docker",), "img:1").kill_argv("n") == [
        "docker", "kill", "--signal", "KILL", "n"
    ]  # fmt: skip


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    return line


def test_serve_says_in_one_line_that_the_image_is_missing(tmp_path: pathlib.Path) -> None:
    result = serve("--image", "no/such:image", "--engine", fake_engine(tmp_path, None))
    line = one_line(result)
    assert line.startswith("duplexlambda serve: no image 'no/such:image' here (")
    assert "image not known" in line
    assert "build it first, e.g." in line


def test_serve_image_and_no_runtime_exclude_each_other() -> None:
    line = one_line(serve("--image", "img", "--no-runtime"))
    assert line == "duplexlambda serve: --image and --no-runtime exclude each other"
