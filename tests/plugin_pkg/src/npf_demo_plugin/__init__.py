"""npf-demo-plugin: a framework and a reporter, published through the entry-point
group ``npf_core.plugins`` (see pyproject.toml)."""

__version__ = "0.3.1"
