"""GEPA Explorer's logic: datasets, prompts, scorers, models, optimization runs, analysis, charts.

Nothing here imports Streamlit. Heavy libraries (mlflow, litellm, openai, plotly, pandas) are
imported inside the functions that need them, so ``import core`` and ``python -m core --help``
stay fast.
"""

__version__ = "0.1.0"
