"""What a finished (or stopped) optimization reports, built in one place from its events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from core.analysis import RunView

CLI_KEYS = (
    "run_id",
    "baseline_uri",
    "optimized_uri",
    "registered",
    "registered_by_run",
    "initial_score",
    "final_score",
    "metric_calls",
    "iterations",
    "candidates",
    "max_pareto_front_size",
    "stopped_by",
    "failed_predictions",
    "failed_reflections",
    "status",
    "train_size",
    "validation_size",
    "test_size",
    "test_initial_score",
    "test_final_score",
    "test_p_value",
    "test_delta_ci",
    "tokens",
    "cost_usd",
    "seconds",
)


@dataclass(frozen=True)
class RunSummary:
    """A run's outcome in numbers; :meth:`cli_dict` is the CLI's last JSON line.

    ``registered`` is "new" when the run added a prompt version, "existing" when its best candidate's
    text was already a version (``optimized_uri`` then names that one, ``registered_by_run`` the run
    that registered it, None when no run did), None when nothing was registered
    (``not_registered_reason`` says why). The ``test_*`` fields are None without a test set
    (or when the run ended before its final evaluation); ``test_delta_ci`` is the paired bootstrap 95%
    interval of the best candidate's gain over the baseline on the test set. ``tokens`` counts every
    successful model response per role (preflight checks included; ``judge`` all zeros without a
    judge); ``cost_usd`` is None when a model used has no known price; ``seconds`` is the wall time.
    """

    run_id: str | None
    baseline_uri: str | None
    optimized_uri: str | None
    registered: Literal["new", "existing"] | None
    registered_by_run: str | None
    initial_score: float | None
    final_score: float | None
    metric_calls: int
    iterations: int
    candidates: int
    max_pareto_front_size: int
    stopped_by: str
    failed_predictions: int
    failed_reflections: int
    status: Literal["finished", "cancelled", "failed"]
    train_size: int = 0
    validation_size: int = 0
    test_size: int = 0
    test_initial_score: float | None = None
    test_final_score: float | None = None
    test_p_value: float | None = None
    test_delta_ci: tuple[float, float] | None = None
    tokens: dict[str, dict[str, int]] | None = None
    cost_usd: float | None = None
    seconds: float | None = None
    not_registered_reason: str | None = None
    error: str | None = None
    experiment_id: str | None = None
    run_dir: str | None = None

    @classmethod
    def of(cls, view: RunView, *, run_dir: str | None = None) -> RunSummary:
        """The summary of a run whose log ends with its ``run_finished`` event."""
        if view.finished is None:
            raise ValueError("The run has not finished: there is no summary yet.")
        from core.accounting import tokens_summary
        from core.analysis import before_after

        registered = view.registered
        test = before_after(view).get("test")
        return cls(
            run_id=view.run_id,
            baseline_uri=view.baseline.uri or None,
            optimized_uri=registered.uri if registered else None,
            registered=("existing" if registered.existing else "new") if registered else None,
            registered_by_run=registered.by_run if registered else None,
            initial_score=view.initial_score,
            final_score=view.final_score,
            metric_calls=view.metric_calls,
            iterations=view.iterations,
            candidates=len(view.candidates),
            max_pareto_front_size=view.max_front_size,
            stopped_by=view.finished.stopped_by,
            failed_predictions=view.failed_predictions,
            failed_reflections=view.failed_reflections,
            status=view.finished.status,
            train_size=len(view.started.train_ids),
            validation_size=len(view.val_examples),
            test_size=len(view.test_examples),
            test_initial_score=test.before_mean if test else None,
            test_final_score=test.after_mean if test else None,
            test_p_value=test.p_value if test else None,
            test_delta_ci=(test.interval.low, test.interval.high) if test else None,
            tokens=tokens_summary(view.usage),
            cost_usd=view.cost.total if view.cost else None,
            seconds=view.seconds,
            not_registered_reason=view.not_registered_reason,
            error=view.error,
            experiment_id=view.started.mlflow.experiment_id,
            run_dir=run_dir,
        )

    def cli_dict(self) -> dict[str, Any]:
        data = {key: getattr(self, key) for key in CLI_KEYS}
        data["test_delta_ci"] = list(self.test_delta_ci) if self.test_delta_ci else None
        if self.not_registered_reason:
            data["not_registered_reason"] = self.not_registered_reason
        if self.error:
            data["error"] = self.error
        return data


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and ``noun`` in the right number: "1 model call", "3 model calls"."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def failure_warning(view: RunView) -> str | None:
    """One sentence for the model calls of a run that failed even after retries, naming only what did
    fail (task-model predictions, reflections); None when nothing failed."""
    parts = []
    if view.failed_predictions:
        parts.append(
            f"{counted(view.failed_predictions, 'prediction')} failed even after retries: "
            + ("it is" if view.failed_predictions == 1 else "they are")
            + " flagged per example on the Results page and scored 0, so the scores are lower bounds"
        )
    if view.failed_reflections:
        parts.append(
            f"{counted(view.failed_reflections, 'reflection')} failed even after retries, so "
            + ("that iteration" if view.failed_reflections == 1 else "those iterations")
            + " proposed nothing"
        )
    return "; ".join(parts) + "." if parts else None
