"""``python -m pa_ci.cli``: the ``pa-ci`` command line."""
from . import main

if __name__ == "__main__":
    main()
