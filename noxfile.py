"""Sessions: ``tests`` (default suite, what CI runs), ``torch`` (PyTorch/Neuron/GPU
plugins against the fakes; CI runs it), ``tensorflow`` and ``mxnet`` (each framework in
its own environment; CI runs them), ``browser`` (the HTML report and history in headless Chromium,
installed from Debian's packages; CI runs it), ``tui`` (npf in a real terminal under
tmux; CI runs it), ``ray`` (the ray launcher on a local two-node Ray cluster;
CI runs it), ``onnxruntime`` (the third-party plugin package in examples/npf-onnxruntime,
installed from its folder, and its own tests; CI runs it), ``notebook`` (NeuronPerf's
guide in a Jupyter notebook, executed in a real kernel with nbclient and ipykernel; CI
runs it), ``lint``, ``typecheck`` (mypy;
CI runs it), ``docs``, and the heavy ones CI does not run: ``slow`` (long load tests)."""

from __future__ import annotations

import os
import shutil

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "virtualenv"  # pip finds the local torch wheel; uv would download CUDA
nox.options.sessions = ["lint", "tests", "torch", "tensorflow", "mxnet", "onnxruntime"]  # CI runs more: .ci/run
nox.options.error_on_missing_interpreters = False

PLUGIN_PKG = "tests/plugin_pkg"
#: a third-party framework plugin as its own distribution, with its own tests (nox -s onnxruntime)
ONNX_PKG = "examples/npf-onnxruntime"
#: tests marked with these run in their own sessions (own environment or system
#: packages); the default ``tests`` session leaves them out
OWN_SESSIONS = ("slow", "torch", "tensorflow", "mxnet", "ray", "browser", "tui", "notebook")
NOT_OWN_SESSIONS = " and ".join(f"not {m}" for m in OWN_SESSIONS)


def _install(session: nox.Session, extras: str = "test") -> None:
    session.install("-e", f".[{extras}]")
    session.install(PLUGIN_PKG)


@nox.session
def tests(session: nox.Session) -> None:
    """The default suite: unit, integration (real processes), plugin package, faults
    (with pandas, for the reports' .to_pandas())."""
    _install(session, "test,pandas")
    session.run("pytest", "-m", NOT_OWN_SESSIONS, "--durations=10", *session.posargs)


@nox.session
def torch(session: nox.Session) -> None:
    """PyTorch, torch-neuronx (through tests/fakes) and GPU plugin tests."""
    _install(session, "test,torch")
    session.run("pytest", "-m", "torch", "--durations=10", *session.posargs)


@nox.session
def tui(session: nox.Session) -> None:
    """npf in a real terminal: runs under tmux at 80 and 160 columns, the screen captured
    (tests/tui). Installs tmux with apt-get when it is missing (Debian/Ubuntu, as root)."""
    import shutil

    if shutil.which("tmux") is None:
        session.run("apt-get", "update", "-q", external=True)
        session.run("apt-get", "install", "-y", "-q", "tmux", external=True)
    _install(session)
    session.run("pytest", "-m", "tui", *session.posargs)


@nox.session
def tensorflow(session: nox.Session) -> None:
    """TensorFlow and tensorflow-neuronx (through tests/fakes): tensorflow-cpu, real tiny Keras models."""
    _install(session, "test,tensorflow")
    session.run("pytest", "-m", "tensorflow", "--durations=10", *session.posargs)


@nox.session
def mxnet(session: nox.Session) -> None:
    """MXNet 1.9.1 (numpy<1.24) and mx_neuron (through tests/fakes): real tiny symbol checkpoints.
    Its own environment: TensorFlow and MXNet in one process crash."""
    _install(session, "test,mxnet")
    session.run("pytest", "-m", "mxnet", "--durations=10", *session.posargs)


@nox.session
def ray(session: nox.Session) -> None:
    """The ray launcher on a real local Ray cluster of two nodes (ray.cluster_utils)."""
    _install(session, "test,ray")
    session.run("pytest", "-m", "ray", "--durations=10", *session.posargs)


@nox.session
def onnxruntime(session: nox.Session) -> None:
    """npf-onnxruntime, the ONNX Runtime plugin in examples/npf-onnxruntime: npf and the
    plugin pip-installed from their folders (the plugin as a user installs it, not
    editable), then the plugin's own tests, from its folder and with its own pytest
    settings (real onnxruntime; tiny models built with onnx, nothing downloaded)."""
    session.install("-e", ".")
    # a build/ folder left by an earlier install can carry files the package no longer has
    shutil.rmtree(f"{ONNX_PKG}/build", ignore_errors=True)
    session.install(f"./{ONNX_PKG}[test]")
    session.chdir(ONNX_PKG)
    session.run("pytest", "--durations=10", *session.posargs)


@nox.session
def notebook(session: nox.Session) -> None:
    """tests/notebook/neuronperf_guide.ipynb executed in a Jupyter kernel (nbclient,
    ipykernel): NeuronPerf's guide calls, as written, on the Neuron fakes."""
    _install(session, "test,torch")
    session.install("nbclient>=0.10", "nbformat>=5.10", "ipykernel>=6.29")
    session.run("pytest", "-m", "notebook", "--durations=10", *session.posargs)


@nox.session(default=False)
def slow(session: nox.Session) -> None:
    """Long load tests (many copies, long sweeps)."""
    _install(session)
    session.run("pytest", "-m", "slow", "--durations=10", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint, import order) and import-linter (the layers: pyproject's
    [tool.importlinter] contracts, mapped in docs/architecture.md)."""
    session.install("ruff>=0.6", "import-linter>=2.1")
    session.install("--no-deps", "-e", ".", PLUGIN_PKG)  # the packages whose imports are checked
    session.run("ruff", "check", "npf_core", "npf_plugins", "tests", "benchmarks", "noxfile.py", ONNX_PKG)
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy over the engine and the built-in plugins (pyproject's [tool.mypy]); npf ships
    py.typed, so what plugin authors see is what is checked here."""
    _install(session, "test,torch")  # torch's own types check the torch plugin and the engine's torch paths
    session.install("mypy==2.4.1", "types-psutil")  # pinned: a new mypy may judge the same code otherwise
    session.run("mypy", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation with mkdocs, strict: a broken link or a page missing
    from the nav fails. (tests/unit/test_docs.py keeps docs/ in step with the code.)"""
    session.install("mkdocs>=1.6")
    session.run("mkdocs", "build", "--strict", "-d", f"{session.create_tmp()}/site", *session.posargs)


CHROMIUM = "/usr/bin/chromium"


@nox.session(default=False)
def browser(session: nox.Session) -> None:
    """The HTML report and ``npf history --html`` opened in headless Chromium (no
    network): no console errors, every chart drawn. Installs Debian's ``chromium`` package with apt-get when
    /usr/bin/chromium is missing (needs root, as in CI)."""
    if not os.path.exists(CHROMIUM):
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        session.run(*sudo, "apt-get", "update", "-qq", external=True)
        session.run(*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium", external=True,
                    env={"DEBIAN_FRONTEND": "noninteractive"})  # fmt: skip
    if shutil.which("chromium") is None and not os.path.exists(CHROMIUM):
        session.error("chromium is not installed and could not be installed")
    _install(session)
    session.run("pytest", "-m", "browser", "--durations=10", *session.posargs, env={"NPF_CHROMIUM": CHROMIUM})
