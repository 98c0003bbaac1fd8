"""``python -m mynakit.cli``: the same as the ``mynakit`` console script."""

from mynakit.cli.main import main

main()
