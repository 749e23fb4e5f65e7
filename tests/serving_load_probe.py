"""Helper for tests/test_rasa_speedups.py: load a model the way the server does and
print what it predicts for the given texts as JSON (one process per way of loading,
so Rasa's own loading is not touched by our speed-ups).

    python tests/serving_load_probe.py rasa|fast MODEL TEXTS.json
"""
from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(way: str, model: str, texts_file: str) -> None:
    if way == "fast":
        from scripts import rasa_speedups

        rasa_speedups.install()
    from rasa.core.agent import Agent

    agent = Agent.load(model)
    texts = json.loads(Path(texts_file).read_text(encoding="utf-8"))

    async def parse_all() -> list:
        out = []
        for text in texts:
            parsed = await agent.parse_message(text)
            out.append({"intent": parsed["intent"]["name"], "confidence": round(parsed["intent"]["confidence"], 5),
                        "entities": sorted((e["entity"], str(e["value"])) for e in parsed["entities"])})
        return out

    from scripts import rasa_speedups

    print(json.dumps({"fast_model_loads": rasa_speedups.fast_model_loads,
                      "parsed": asyncio.run(parse_all())}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
