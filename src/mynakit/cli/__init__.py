"""The ``mynakit`` command line: one module per command group, one error boundary (main.py)."""
