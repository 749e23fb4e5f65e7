"""Start one Rasa server replica of the scaled set-up.

    python scripts/rasa_replica.py [MODEL]

Writes this replica's endpoints file (var/run/endpoints-<port>.yml, from
af_core/settings.py: AF_TRACKER_STORE=postgres, AF_LOCK_STORE=redis,
AF_ACTIONS_URL …) and runs scripts/rasa_server.py with it. Several replicas
on one machine need only different AF_RASA_PORT (and AF_LOG_DIR, so their
logs stay apart). The model defaults to the one for the current data
(scripts/model.py path), else the newest under models/. Used by the Docker
image, tests/test_scaled.py and devtools/bench.py.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from af_core.settings import settings_at_start  # noqa: E402
from scripts import model as model_lookup  # noqa: E402
from scripts.run import write_endpoints  # noqa: E402


def default_model() -> Path:
    exact = model_lookup.model_path()
    if exact.is_file():
        return exact
    found = sorted(model_lookup.MODELS.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SystemExit("FEJL: der er ingen trænet model under models/ – kør `make model` først.")
    return found[-1]


def main(argv: list[str]) -> None:
    settings = settings_at_start()  # a configuration error stops here, in Danish
    model = Path(argv[1]) if len(argv) > 1 else default_model()
    endpoints = write_endpoints(settings, settings.var_dir / "run" / f"endpoints-{settings.rasa_port}.yml")
    from scripts.rasa_server import main as serve

    serve(str(model), str(endpoints))


if __name__ == "__main__":
    main(sys.argv)
