"""The pieces the app's pages share: the sidebar and status line, the data layer, dataset picking,
the run panel and the Results tabs. Streamlit only; all logic lives in :mod:`core`."""
