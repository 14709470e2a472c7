"""Why copies fork from a zygote that never imports onnxruntime (README.md, "Start
method"), shown with the installed onnxruntime, and the guard that refuses a copy
forked from a process that had imported it. Each case runs in its own interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork and its hazards: Linux")

#: how long a forked child may take to exit normally before it counts as hung
EXIT_WAIT_S = 5


#: onnxruntime (1.32) does not start its import-time thread when it sees one of these
#: (it takes the machine for a CI runner), which hides the hazard: users' machines do not
#: set them, so the scripts run without them
CI_MARKERS = ("CI", "TF_BUILD", "GITHUB_ACTIONS")


def run_script(body: str, cwd: Path, timeout: float = 120) -> str:
    code = "import warnings\nwarnings.simplefilter('ignore', DeprecationWarning)\n" + textwrap.dedent(body)
    env = {k: v for k, v in os.environ.items() if k not in CI_MARKERS}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"script failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout.strip().splitlines()[-1]


#: fork, let the child exit the normal way (interpreter shutdown, C++ static destructors);
#: prints "exit N", "signal N" or "hung"
FORK_AND_EXIT = f"""
import os, signal, sys, time

def fork_and_exit():
    pid = os.fork()
    if pid == 0:
        sys.exit(0)
    deadline = time.monotonic() + {EXIT_WAIT_S}
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            return f"exit {{code}}" if code >= 0 else f"signal {{-code}}"
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "hung"
"""


def test_a_fork_of_a_process_without_onnxruntime_exits_cleanly(tmp_path: Path) -> None:
    # the control for the next test: the harness itself lets a child exit
    assert run_script(FORK_AND_EXIT + "import numpy\nprint(fork_and_exit())", tmp_path) == "exit 0"


def test_a_fork_of_a_process_that_imported_onnxruntime_cannot_exit(tmp_path: Path) -> None:
    """The reason for the start method: onnxruntime starts a thread when imported; a
    forked child lacks it and hangs (or aborts) in onnxruntime's exit handlers. If this
    test fails, an onnxruntime release fixed it: reconsider ``preimport`` (README)."""
    outcome = run_script(FORK_AND_EXIT + "import onnxruntime\nprint(fork_and_exit())", tmp_path)
    assert outcome != "exit 0", "a fork of a process that imported onnxruntime exited cleanly"


def test_a_copy_forked_after_onnxruntime_was_imported_refuses_to_load(tmp_path: Path) -> None:
    body = """
        import os
        from helpers import make_ctx, matmul_relu
        from pathlib import Path
        from npf_onnxruntime.errors import ForkedAfterImport
        from npf_onnxruntime.framework import OnnxruntimeFramework, forked_from

        path = matmul_relu(Path("model.onnx"))
        import onnxruntime  # noqa: F401 - what a zygote or caller must not have done

        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                OnnxruntimeFramework({}).load("path", "model.onnx", make_ctx(Path(".")))
                msg = "loaded"
            except ForkedAfterImport as exc:
                msg = f"refused {forked_from() == exc.pid == os.getppid()} {exc}"
            os.write(w, msg.encode())
            os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        print(os.read(r, 4096).decode())
    """
    out = run_script(_with_tests_on_path(body), tmp_path)
    assert out.startswith("refused True this copy was forked from process"), out
    assert "start_method 'zygote'" in out


def test_a_copy_forked_before_onnxruntime_was_imported_loads(tmp_path: Path) -> None:
    body = """
        import os, sys
        from helpers import make_ctx, matmul_relu
        from pathlib import Path
        from npf_onnxruntime.framework import OnnxruntimeFramework, forked_from

        path = matmul_relu(Path("model.onnx"))
        assert "onnxruntime" not in sys.modules
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                model = OnnxruntimeFramework({}).load("path", "model.onnx", make_ctx(Path(".")))
                msg = f"loaded {forked_from()} {model.session.get_providers()[0]}"
            except Exception as exc:
                msg = f"failed {exc!r}"
            os.write(w, msg.encode())
            os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        print(os.read(r, 4096).decode())
    """
    assert run_script(_with_tests_on_path(body), tmp_path) == "loaded None CPUExecutionProvider"


def _with_tests_on_path(body: str) -> str:
    return f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n" + textwrap.dedent(body)
