"""What a run will cost before it starts: model calls, tokens, dollars and seconds per role. Pure.

GEPA's accounting (gepa 0.1.4): one metric call is one candidate scored on one example. The seed (the
baseline) costs ``len(validation)``. Each iteration scores its parent on a minibatch; unless every answer
there is already right (the iteration is *skipped*: no proposal), the reflection model proposes a child
(one reflection call), the child is scored on the same minibatch, and when it does better it is
*accepted* and scored on the whole validation set. The budget is checked before each iteration, so a
run ends on the first iteration that starts with calls >= budget behind it: the last one overshoots.

Assumptions, each a field of :class:`RunShape` with the default measured on the offline demo (its
default run and three seeds of ``benchmarks/demo_search.py``; see ``benchmarks/judge_cost.py``):

* the first proposal is accepted: the seed is weak on some minibatch, and the first fix is a fix;
  later ones are accepted at ``acceptance_rate`` (0.75 on the demo; real models: measure, expect less)
  and ``skip_rate`` of iterations (0.25) meet a minibatch the parent already gets right;
* patience is ignored: the estimate runs to the budget (an upper bound; patience can stop it earlier);
* after the search the engine scores the baseline and the best candidate once more on the validation
  set (``final_evaluation_calls``, default 2 x validation), and checks each model once before it;
* every metric call and final-evaluation call asks the judge, unless its (output, expected) pair was
  judged before: ``judge_hit_rate`` of them are answered by the cache. Left at None, the rate follows
  from the search for a deterministic task model: the final evaluation repeats outputs already judged,
  apart from ``final_new_outputs`` of them (the test rows, which the search never scored);
  when the train set is the validation set (``train_is_validation``) so do the parent's minibatch and
  an accepted child's minibatch examples; and ``output_overlap`` of a proposed candidate's outputs are
  answers an earlier candidate already gave on that example (short answers converge: 0.23 on the
  demo's default run, where one child follows a chatty seed; 0.70 over its eight-candidate runs;
  default 0.6; near 0 for free-form text). Sampling at a temperature lowers all of it: pass what you see;
* a proposed instruction is ``proposal_tokens`` long (default 100; the demo's are 50 to 130); every
  task reply is as long as the preflight reply (``reply_tokens``; optimized prompts make them shorter);
* a reflection prompt is GEPA's frame (:data:`REFLECTION_FRAME_TOKENS`) plus the instruction and, per
  minibatch example, its fields, the answer, the expected answer and the scorer's feedback; its reply
  is the new instruction and a short preface; a judge prompt is MLflow's judge frame plus the fields;
* time: calls of one batch run ``concurrency`` at once, each followed by its judge call (on a cache
  miss); reflections run one at a time; the engine adds :data:`ENGINE_SECONDS_PER_CALL` per task call
  and :data:`START_SECONDS` around the search (both measured on the offline demo, whose calls take
  milliseconds). ``seconds_per_call`` should be a warm call's latency: a process's first call also
  pays for imports and connecting (0.5 s against 0.006 s on the loopback endpoint).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.models import ROLES, Role
from core.pricing import Price
from core.tokens import REPLY_PRIMING_TOKENS, TOKENS_PER_MESSAGE

CHAT_FRAME_TOKENS = TOKENS_PER_MESSAGE + REPLY_PRIMING_TOKENS
# GEPA's reflection prompt without the instruction and examples (measured with core.tokens: 206).
REFLECTION_FRAME_TOKENS = 206
# Per minibatch example: GEPA's headers (component, trace, score, inputs, outputs, expectations, index).
REFLECTION_EXAMPLE_FRAME_TOKENS = 34
# The scorer's feedback sentence, besides the answer and expected answer it quotes.
FEEDBACK_TOKENS = 22
# What a reflection reply says around the new instruction.
REFLECTION_PREFACE_TOKENS = 60
# MLflow's judge system prompt with JUDGE_INSTRUCTIONS and the field labels (measured: 264 for 1-word fields).
JUDGE_FRAME_TOKENS = 260
PROBE_PROMPT_TOKENS = 14  # "Reply with the single word OK." as a chat prompt
PROBE_REPLY_TOKENS = 2
# A run's seconds outside its search and final evaluation on the offline demo (process, imports, MLflow
# store, preflight checks, logging): 20 to 28 s over its default run and three harness seeds.
START_SECONDS = 20.0
# The engine's own work per task call (MLflow's evaluation harness, scoring, events): 186 + 180 calls of
# the default run took 3.9 s of search and final evaluation against an instant model.
ENGINE_SECONDS_PER_CALL = 0.01


@dataclass(frozen=True)
class RunShape:
    """Everything the estimate needs, validated. Token lengths are averages (see :mod:`core.tokens`)."""

    budget: int
    validation_size: int
    train_size: int
    template_tokens: float
    example_tokens: float
    expected_tokens: float
    reply_tokens: float
    seconds_per_call: float
    prices: Mapping[Role, Price | None] = field(default_factory=dict)
    minibatch_size: int = 3
    judge: bool = False
    judge_hit_rate: float | None = None
    train_is_validation: bool = False
    output_overlap: float = 0.6
    concurrency: int = 8
    acceptance_rate: float = 0.75
    skip_rate: float = 0.25
    proposal_tokens: float = 100.0
    judge_reply_tokens: float = 50.0
    reflection_seconds_per_call: float | None = None
    judge_seconds_per_call: float | None = None
    final_evaluation_calls: int | None = None
    final_new_outputs: float = 0.0

    def __post_init__(self) -> None:
        if self.budget < 1 or self.validation_size < 1 or self.train_size < 1 or self.minibatch_size < 1:
            raise ValueError("The budget, the validation and train sizes and the minibatch must be 1 or more.")
        if self.concurrency < 1:
            raise ValueError("Concurrency must be 1 or more.")
        for name in ("judge_hit_rate", "acceptance_rate", "skip_rate", "output_overlap"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"The {name.replace('_', ' ')} must be between 0 and 1.")
        if self.skip_rate >= 1.0:
            raise ValueError("The skip rate must be below 1, or the search never proposes anything.")
        lengths = ("template_tokens", "example_tokens", "expected_tokens", "reply_tokens", "proposal_tokens")
        if any(getattr(self, name) < 0 for name in lengths) or self.seconds_per_call < 0:
            raise ValueError("Token lengths and seconds per call cannot be negative.")

    @property
    def minibatch(self) -> int:
        return min(self.minibatch_size, self.train_size)


@dataclass(frozen=True)
class RoleEstimate:
    """Expected calls, tokens and dollars of one role (cost None: the role's price is unknown)."""

    calls: float
    prompt_tokens: float
    completion_tokens: float
    cost: float | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Estimate:
    """The expected run: metric calls, iterations, per-role calls/tokens/cost, seconds, and in words
    what the judge changes (None without a judge)."""

    metric_calls: float
    iterations: int
    by_role: Mapping[Role, RoleEstimate]
    seconds: float
    simulated: bool
    judge_effect: str | None = None
    judge_hit_rate: float = 0.0

    @property
    def calls(self) -> float:
        return sum(r.calls for r in self.by_role.values())

    @property
    def cost(self) -> float | None:
        costs = [r.cost for r in self.by_role.values() if r.calls]
        return None if any(c is None for c in costs) else sum(c for c in costs if c is not None)

    def summary(self) -> str:
        money = (
            "nothing (simulated model)"
            if self.simulated
            else ("an unknown amount (a model has no price)" if self.cost is None else f"about {_dollars(self.cost)}")
        )
        parts = ", ".join(f"{round(r.calls):,} {role}" for role, r in self.by_role.items() if r.calls)
        text = f"About {round(self.calls):,} model calls ({parts}), {money}, {_duration(self.seconds)}."
        return f"{text} With the judge: {self.judge_effect}." if self.judge_effect else text

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric_calls": self.metric_calls,
            "iterations": self.iterations,
            "calls": self.calls,
            "cost": self.cost,
            "seconds": self.seconds,
            "simulated": self.simulated,
            "by_role": {role: r.to_dict() for role, r in self.by_role.items()},
            "judge_effect": self.judge_effect,
            "judge_hit_rate": self.judge_hit_rate,
        }


def _dollars(value: float) -> str:
    return f"${value:.2f}" if value >= 0.995 else (f"${value:.3f}" if value >= 0.001 else f"${value:.5f}")


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


@dataclass(frozen=True)
class _Search:
    """Expected counts of the search itself, from GEPA's accounting."""

    metric_calls: float
    iterations: int
    proposals: float
    seed_calls: float  # task calls with the seed's template (baseline and seed-parent minibatches)
    rounds: float  # batches of concurrent task calls, for the time
    new_outputs: float  # scorings of an output no candidate gave on that example before (deterministic model)


def _search(shape: RunShape) -> _Search:
    m, v, c = shape.minibatch, shape.validation_size, shape.concurrency

    def rounds(batch: int) -> int:
        return math.ceil(batch / c)

    calls, seed_calls, iterations, proposals = float(v), float(v), 0, 0.0
    new_outputs = float(v)  # the seed's validation
    fresh = 1.0 - shape.output_overlap  # share of a proposed candidate's outputs no earlier candidate gave
    time_rounds = float(rounds(v))
    while calls < shape.budget:
        iterations += 1
        first = iterations == 1
        propose = 1.0 if first else 1.0 - shape.skip_rate
        accept = 1.0 if first else shape.acceptance_rate
        calls += m + propose * (m + accept * v)
        seed_calls += m if first else 0
        proposals += propose
        # The parent's minibatch was judged when the parent was validated on it (train is validation);
        # otherwise it is new: all of it for the seed, the fresh share for a proposed parent.
        parent_new = 0.0 if shape.train_is_validation else (m if first else m * fresh)
        child_validation = (v - m) if shape.train_is_validation else v
        new_outputs += parent_new + propose * fresh * (m + accept * child_validation)
        time_rounds += rounds(m) + propose * (rounds(m) + accept * rounds(v))
    return _Search(calls, iterations, proposals, seed_calls, time_rounds, new_outputs)


def estimate_run(shape: RunShape) -> Estimate:
    """The expected calls, tokens, cost and time of a run of ``shape`` (assumptions: module docstring)."""
    estimate = _estimate(shape)
    if not shape.judge:
        return estimate
    without = _estimate(dataclasses.replace(shape, judge=False))
    return dataclasses.replace(estimate, judge_effect=judge_effect(estimate, without))


def _estimate(shape: RunShape) -> Estimate:
    search = _search(shape)
    v, m = shape.validation_size, shape.minibatch
    final_calls = float(2 * v if shape.final_evaluation_calls is None else shape.final_evaluation_calls)
    final_seed_calls = final_calls / 2
    seed_prompt = shape.template_tokens + shape.example_tokens + CHAT_FRAME_TOKENS
    proposal_prompt = shape.proposal_tokens + shape.example_tokens + CHAT_FRAME_TOKENS
    task_calls = search.metric_calls + final_calls
    seed_task_calls = search.seed_calls + final_seed_calls
    task = (
        task_calls + 1,
        seed_task_calls * seed_prompt + (task_calls - seed_task_calls) * proposal_prompt + PROBE_PROMPT_TOKENS,
        task_calls * shape.reply_tokens + PROBE_REPLY_TOKENS,
    )
    per_example = (
        REFLECTION_EXAMPLE_FRAME_TOKENS
        + FEEDBACK_TOKENS
        + shape.example_tokens
        + 2 * (shape.reply_tokens + shape.expected_tokens)
    )
    reflection_prompt = REFLECTION_FRAME_TOKENS + CHAT_FRAME_TOKENS + shape.proposal_tokens + m * per_example
    reflection = (
        search.proposals + 1,
        search.proposals * reflection_prompt + PROBE_PROMPT_TOKENS,
        search.proposals * (shape.proposal_tokens + REFLECTION_PREFACE_TOKENS) + PROBE_REPLY_TOKENS,
    )
    hit_rate = _hit_rate(shape, search, final_calls)
    judged = task_calls * (1.0 - hit_rate) + 1 if shape.judge else 0.0  # + the judge check
    judge_prompt = JUDGE_FRAME_TOKENS + shape.example_tokens + shape.reply_tokens + shape.expected_tokens
    judge = (judged, judged * judge_prompt, judged * shape.judge_reply_tokens)
    by_role = {
        role: RoleEstimate(calls, prompt, completion, _cost(shape.prices.get(role), calls, prompt, completion))
        for role, (calls, prompt, completion) in zip(ROLES, (task, reflection, judge), strict=True)
    }
    used = [shape.prices.get(role) for role in ROLES if by_role[role].calls]
    simulated = bool(used) and all(p is not None and p.simulated for p in used)
    seconds = _seconds(shape, search, final_calls, hit_rate)
    return Estimate(search.metric_calls, search.iterations, by_role, seconds, simulated, judge_hit_rate=hit_rate)


def _hit_rate(shape: RunShape, search: _Search, final_calls: float) -> float:
    if shape.judge_hit_rate is not None:
        return shape.judge_hit_rate
    # The final evaluation repeats outputs judged in the search, apart from its final_new_outputs (test rows).
    scorings = search.metric_calls + final_calls
    new = search.new_outputs + min(shape.final_new_outputs, final_calls)
    return max(0.0, 1.0 - new / scorings) if scorings else 0.0


def _cost(price: Price | None, calls: float, prompt: float, completion: float) -> float | None:
    if not calls:
        return 0.0
    return None if price is None else price.cost(prompt, completion)


def _seconds(shape: RunShape, search: _Search, final_calls: float, hit_rate: float) -> float:
    task_seconds = shape.seconds_per_call
    judge_seconds = shape.judge_seconds_per_call if shape.judge_seconds_per_call is not None else task_seconds
    reflection_seconds = (
        shape.reflection_seconds_per_call if shape.reflection_seconds_per_call is not None else task_seconds
    )
    per_round = task_seconds + (judge_seconds * (1.0 - hit_rate) if shape.judge else 0.0)
    rounds = search.rounds + math.ceil(final_calls / shape.concurrency)
    checks = task_seconds + reflection_seconds + (judge_seconds if shape.judge else 0.0)
    engine = ENGINE_SECONDS_PER_CALL * (search.metric_calls + final_calls)
    return START_SECONDS + checks + engine + rounds * per_round + search.proposals * reflection_seconds


def judge_effect(with_judge: Estimate, without_judge: Estimate) -> str:
    """What the judge changes, in words: "the judge doubles the calls and adds about $0.04, and takes 30 s longer"."""
    ratio = with_judge.calls / without_judge.calls if without_judge.calls else math.inf
    if ratio < 1.05:
        calls = "adds almost no calls (the cache answers nearly every verdict)"
    elif ratio < 1.35:
        calls = f"adds about {round((ratio - 1) * 100)}% more calls"
    elif ratio < 1.65:
        calls = "adds half as many calls again"
    elif ratio < 2.35:
        calls = "doubles the calls"
    elif ratio < 3.35:
        calls = "triples the calls"
    else:
        calls = f"multiplies the calls by {ratio:.1f}"
    judge_cost = with_judge.by_role["judge"].cost
    if with_judge.simulated:
        money = "costs nothing (simulated)"
    elif judge_cost is None:
        money = "adds an unknown cost (the judge model has no price)"
    else:
        money = f"adds about {_dollars(judge_cost)}"
    extra = with_judge.seconds - without_judge.seconds
    return f"the judge {calls} and {money}, and takes {_duration(max(extra, 0.0))} longer"
