"""Sessions: ``tests`` (default suite, what CI runs), ``torch`` (PyTorch/Neuron/GPU
plugins against the fakes; CI runs it), ``ray`` (the ray launcher on a local
two-node Ray cluster; CI runs it), ``lint``, ``typecheck``, ``docs``, and the
heavy ones CI does not run: ``slow`` (long load tests)."""

from __future__ import annotations

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "virtualenv"  # pip finds the local torch wheel; uv would download CUDA
nox.options.sessions = ["lint", "tests", "torch", "ray"]
nox.options.error_on_missing_interpreters = False

PLUGIN_PKG = "tests/plugin_pkg"


def _install(session: nox.Session, extras: str = "test") -> None:
    session.install("-e", f".[{extras}]")
    session.install(PLUGIN_PKG)


@nox.session
def tests(session: nox.Session) -> None:
    """The default suite: unit, integration (real processes), plugin package, faults."""
    _install(session)
    session.run("pytest", "-m", "not slow and not torch and not ray", "--durations=10", *session.posargs)


@nox.session
def torch(session: nox.Session) -> None:
    """PyTorch, torch-neuronx (through tests/fakes) and GPU plugin tests."""
    _install(session, "test,torch")
    session.run("pytest", "-m", "torch", "--durations=10", *session.posargs)


@nox.session
def ray(session: nox.Session) -> None:
    """The ray launcher on a real local Ray cluster of two nodes (ray.cluster_utils)."""
    _install(session, "test,ray")
    session.run("pytest", "-m", "ray", "--durations=10", *session.posargs)


@nox.session(default=False)
def slow(session: nox.Session) -> None:
    """Long load tests (many copies, long sweeps)."""
    _install(session)
    session.run("pytest", "-m", "slow", "--durations=10", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and import order."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", "npf_core", "npf_plugins", "tests", "benchmarks", "noxfile.py")


@nox.session(default=False)
def typecheck(session: nox.Session) -> None:
    """mypy over the engine and the built-in plugins."""
    _install(session)
    session.install("mypy>=1.10")
    session.run("mypy", "npf_core", "npf_plugins", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation with mkdocs, strict: a broken link or a page missing
    from the nav fails. (tests/unit/test_docs.py keeps docs/ in step with the code.)"""
    session.install("mkdocs>=1.6")
    session.run("mkdocs", "build", "--strict", "-d", f"{session.create_tmp()}/site", *session.posargs)
