"""The yardstick: a bare ``gepa.optimize`` loop with a minimal adapter, no MLflow.

Same endpoint, data, scorer, budget, seed and concurrency as GEPA Explorer's CLI; reflection goes
through litellm as in GEPA's default. Run by ``engine_overhead.py``; usage:
``python benchmarks/bare_gepa.py BASE_URL MODEL BUDGET CONCURRENCY``.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import gepa
import openai

from core.datasets import default_dataset, load_dataset
from core.scorers import ScorerSpec
from core.templates import render


def main() -> None:
    base_url, model, budget, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    bundled = default_dataset()
    rows = load_dataset(bundled.path).to_mlflow_records()
    client = openai.OpenAI(base_url=base_url, api_key="not-needed")
    pool = ThreadPoolExecutor(concurrency)
    scorer = ScorerSpec()

    class MinimalAdapter(gepa.GEPAAdapter):
        propose_new_texts = None

        def evaluate(self, batch, candidate, capture_traces=False):
            def one(row):
                prompt = render(candidate["qa"], row["inputs"])
                reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}])
                output = reply.choices[0].message.content
                return output, scorer.score(output, row["expectations"]["expected_response"])

            results = list(pool.map(one, batch))
            outputs = [o for o, _ in results]
            trajectories = None
            if capture_traces:
                trajectories = [{"row": r, "output": o, "score": s} for r, (o, s) in zip(batch, results, strict=True)]
            return gepa.EvaluationBatch(outputs=outputs, scores=[s for _, s in results], trajectories=trajectories)

        def make_reflective_dataset(self, candidate, eval_batch, components_to_update):
            return {
                name: [
                    {
                        "inputs": t["row"]["inputs"],
                        "outputs": t["output"],
                        "expectations": t["row"]["expectations"],
                        "score": t["score"],
                    }
                    for t in eval_batch.trajectories
                ]
                for name in components_to_update
            }

    class Quiet:
        def log(self, message):
            pass

    result = gepa.optimize(
        seed_candidate={"qa": bundled.baseline_template},
        trainset=rows,
        adapter=MinimalAdapter(),
        reflection_lm=f"openai/{model}",
        reflection_lm_kwargs={"api_base": base_url, "api_key": "not-needed"},
        max_metric_calls=budget,
        seed=0,
        logger=Quiet(),
    )
    print(f"metric_calls={result.total_metric_calls} best={max(result.val_aggregate_scores):.3f}")


if __name__ == "__main__":
    main()
