"""Start-up cost of ``import core`` and of ``python -m core optimize --help``, against a bare interpreter.

Heavy libraries (mlflow, litellm, openai, plotly, pandas) load only inside the functions that need them;
this prints the median of several fresh processes for each, so a regression shows at once.

    python benchmarks/cli_startup.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from _common import base_env, median, timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    env = base_env()
    commands = {
        "bare_python": [sys.executable, "-c", "pass"],
        "import_core": [sys.executable, "-c", "import core, core.cli, core.datasets, core.scorers, core.templates"],
        "cli_help": [sys.executable, "-m", "core", "optimize", "--help"],
        "import_mlflow_for_scale": [sys.executable, "-c", "import mlflow"],
    }
    results = {name: median([timed(cmd, env) for _ in range(args.repeats)]) for name, cmd in commands.items()}
    for name, seconds in results.items():
        print(f"{name}_seconds={seconds:.3f}")
    heavy = ["mlflow", "litellm", "openai", "plotly", "pandas", "streamlit"]
    check = f"import sys, core.cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True)
    print(f"heavy_modules_loaded_by_import_core={loaded.stdout.strip()}")


if __name__ == "__main__":
    main()
