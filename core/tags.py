"""The names GEPA Explorer gives its MLflow tags, in one place.

Runs are found again by :data:`KIND`; the rest say what a run was and how it went, so the run list
can be read without downloading any artifact.
"""

from __future__ import annotations

PREFIX = "gepa_explorer."

# On an optimization run
KIND = PREFIX + "kind"
KIND_OPTIMIZATION = "optimization"
STATUS = PREFIX + "status"
STOPPED_BY = PREFIX + "stopped_by"
ERROR = PREFIX + "error"
LIVE_DIR = PREFIX + "live_dir"
HOST = PREFIX + "host"
PID = PREFIX + "pid"
BASELINE_URI = PREFIX + "baseline_uri"
PROMPT_NAME = PREFIX + "prompt_name"
DATASET = PREFIX + "dataset"
SCORER = PREFIX + "scorer"
MODEL = PREFIX + "model"
OPTIMIZED_URI = PREFIX + "optimized_uri"
GROUP = PREFIX + "group"  # the runs of one "repeat over seeds"
PARTICIPANT = PREFIX + "participant"  # who of a class started the run
QUEUE_REF = PREFIX + "queue_ref"  # the RQ job of a queued run (core.queue)
WORKER = PREFIX + "worker"  # the RQ worker that ran a queued run
RESUMED_FROM = PREFIX + "resumed_from"  # the run a resumed run continues (core.resume)

# On a prompt version this app registered
SOURCE_RUN = PREFIX + "run_id"
SOURCE_VERSION = PREFIX + "source_version"
CANDIDATE = PREFIX + "candidate"
SOURCE = PREFIX + "source"

# On the final evaluation's trace
ROLE = PREFIX + "role"
