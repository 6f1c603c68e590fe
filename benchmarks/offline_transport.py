"""The offline demo model's two paths from the ``openai`` client: over HTTP to the in-process server
(uvicorn on loopback; what the judge's path through MLflow and litellm uses) and through the
in-process transport the task and reflection models use (:class:`core.offline_model.server.OfflineTransport`).

Each repeat sends the same chat calls (the bundled questions under the default baseline prompt, 8 at
once, as a run scores a batch) down both paths in alternation, so machine noise hits both alike, and
checks that both gave the same replies. Prints the median seconds per path and their ratio.

    python benchmarks/offline_transport.py [--repeats 5] [--calls 270]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from _common import ROOT, median

sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=270)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    from core.datasets import default_dataset
    from core.models import Endpoint
    from core.offline_model.behaviour import MODEL_NAME
    from core.offline_model.server import shared_offline_server

    rows = [json.loads(line) for line in default_dataset().path.read_text().splitlines() if line.strip()]
    questions = [row["inputs"]["question"] for row in rows]
    prompts = [f"Answer this question: {questions[i % len(questions)]}" for i in range(args.calls)]
    server = shared_offline_server()
    paths = {
        "http": Endpoint(server.base_url, "not-needed").client(60.0),
        "in_process": Endpoint(server.base_url, "not-needed", server.transport()).client(60.0),
    }

    def send(client) -> tuple[float, list[str]]:
        def one(prompt: str) -> str:
            reply = client.chat.completions.create(model=MODEL_NAME, messages=[{"role": "user", "content": prompt}])
            return reply.choices[0].message.content

        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            replies = list(pool.map(one, prompts))
        return time.perf_counter() - started, replies

    for client in paths.values():
        send(client)  # connections, imports
    seconds: dict[str, list[float]] = {name: [] for name in paths}
    for repeat in range(1, args.repeats + 1):
        replies = {}
        for name, client in paths.items():
            took, replies[name] = send(client)
            seconds[name].append(took)
        assert replies["http"] == replies["in_process"], "the two paths answered differently"
        print(f"repeat {repeat}: " + "  ".join(f"{name} {seconds[name][-1]:.2f}s" for name in paths))
    http, local = median(seconds["http"]), median(seconds["in_process"])
    print(f"calls_per_repeat={args.calls}")
    print(f"http_median_seconds={http:.3f}")
    print(f"in_process_median_seconds={local:.3f}")
    print(f"http_ms_per_call={1000 * http / args.calls:.2f}")
    print(f"in_process_ms_per_call={1000 * local / args.calls:.2f}")
    print(f"ratio={http / local:.2f}")


if __name__ == "__main__":
    main()
