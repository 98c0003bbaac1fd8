"""Helpers shared by the test tiers: certificate builders, a scripted card, a PDF maker and the
CLI runner. Imported as ``support.*``: pytest's ``pythonpath`` and mypy's ``mypy_path`` both put
``tests/`` on the import path (pyproject.toml)."""
