"""``python -m core``: see :mod:`core.cli`."""

import os
import sys

from core.cli import main

if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is written and the MLflow run is ended by now; skip the interpreter's slow teardown
    # of mlflow/litellm module state (about 3 s here), which has nothing left to save.
    os._exit(code)
