"""``python -m pa_ci``: the ``pa-ci`` command line."""
from .cli import main

main()
