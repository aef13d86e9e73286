"""Chat calls per second through OmniStack's AI client against the bare OpenAI SDK.

Both sides call the same local OpenAI server (``LocalOpenAI``) with the same request, one
call at a time:

  * bare SDK: ``AsyncOpenAI.chat.completions.create``; streaming iterates every chunk;
  * OmniStack: ``AIClient.chat`` / ``AIClient.stream``, which add the neutral types, retry
    and fallback bookkeeping, cost estimation, metrics and the usage log line (written at
    INFO to a handler that drops it, as a service with ``LOG_LEVEL=WARNING`` would not
    even format it).

Rounds alternate the two sides so drift in the machine affects both; the median of each is
printed with the overhead. The answer streams as ``--chunks`` deltas.

    uv run python benchmarks/ai_overhead.py [--calls 200 --rounds 7 --chunks 60]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from collections.abc import Awaitable, Callable

import openai

from omnistack_core.ai import AIClient, AISettings, ChatRequest, Message, UsageRecorder
from omnistack_core.settings import load_settings
from omnistack_core.testing.openai_server import LocalOpenAI

MODEL = "gpt-4o-mini"
QUESTION = "Summarise the plot of a long novel in a few sentences."


async def rate(calls: int, call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        await call()
    return calls / (time.perf_counter() - started)


async def main(calls: int, rounds: int, chunks: int) -> None:
    logging.getLogger("omnistack.ai").setLevel(logging.WARNING)
    answer = "word " * chunks  # chunk_size 5: one delta per word
    with LocalOpenAI() as server:
        bare = openai.AsyncOpenAI(api_key=server.api_key, base_url=server.url, max_retries=0)
        settings = load_settings(
            AISettings,
            env_file=None,
            openai_api_key=server.api_key,
            openai_base_url=server.url,
            ai_max_retries=0,
        )
        ours = AIClient(settings, usage=UsageRecorder(None))
        request = ChatRequest([Message.user(QUESTION)], model=f"openai:{MODEL}", max_tokens=512)
        messages: list[openai.types.chat.ChatCompletionMessageParam] = [
            {"role": "user", "content": QUESTION}
        ]

        async def bare_chat() -> object:
            return await bare.chat.completions.create(
                model=MODEL, messages=messages, max_completion_tokens=512
            )

        async def bare_stream() -> object:
            stream = await bare.chat.completions.create(
                model=MODEL,
                messages=messages,
                max_completion_tokens=512,
                stream=True,
                stream_options={"include_usage": True},
            )
            text = [c.choices[0].delta.content or "" async for c in stream if c.choices]
            return "".join(text)

        async def our_chat() -> object:
            return await ours.chat(request)

        async def our_stream() -> object:
            return [event async for event in ours.stream(request)]

        results: dict[str, list[float]] = {name: [] for name in ("bc", "oc", "bs", "os")}
        for _ in range(rounds + 1):  # the first round warms connections and caches up
            for name, call in (
                ("bc", bare_chat),
                ("oc", our_chat),
                ("bs", bare_stream),
                ("os", our_stream),
            ):
                for _ in range(calls):
                    server.reply(answer, chunk_size=5)
                results[name].append(await rate(calls, call))
        await bare.close()
        await ours.aclose()

    median = {name: statistics.median(values[1:]) for name, values in results.items()}
    print(f"{calls} calls a round, {rounds} rounds, {chunks} deltas per streamed answer\n")
    print(f"{'':<14}{'bare SDK':>12}{'OmniStack':>12}{'overhead':>10}")
    for label, bare_key, our_key in (("chat", "bc", "oc"), ("stream", "bs", "os")):
        overhead = median[bare_key] / median[our_key] - 1
        print(
            f"{label + ' calls/s':<14}{median[bare_key]:>12.0f}{median[our_key]:>12.0f}"
            f"{overhead:>10.1%}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per round (200)")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (7)")
    parser.add_argument("--chunks", type=int, default=60, help="deltas per answer (60)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.calls, arguments.rounds, arguments.chunks))
