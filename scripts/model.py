"""Train the Rasa model only when the training input changed.

The model's file name carries a hash of config.yml, the domain folder and the
training data, so "is there a model for the current data?" is a file lookup.
Training holds a lock (var/train.lock) so parallel runs never train twice at
once on a small machine.

    python scripts/model.py ensure   # train if needed, print the model path
    python scripts/model.py path     # print the model path for the current data (may not exist)
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
INPUTS = ("config.yml", "domain", "data")


def input_files() -> list[Path]:
    files: list[Path] = []
    for name in INPUTS:
        path = ROOT / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in {".yml", ".yaml"}))
    return files


def data_hash() -> str:
    digest = hashlib.sha256()
    for path in input_files():
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def model_path() -> Path:
    return MODELS / f"af-{data_hash()}.tar.gz"


def ensure() -> Path:
    target = model_path()
    if target.exists():
        return target
    (ROOT / "var").mkdir(exist_ok=True)
    with open(ROOT / "var" / "train.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        target = model_path()  # data may have changed while we waited
        if target.exists():
            return target
        print(f"Træner en ny model ({target.name}) ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        rasa = Path(sys.executable).with_name("rasa")
        # Rasa's output goes to our stderr: stdout carries only the model path (make run reads it
        # with $(...)), and a first-ever Rasa run prints its telemetry notice on stdout.
        result = subprocess.run(
            [
                str(rasa), "train",
                "--config", "config.yml", "--domain", "domain", "--data", "data",
                "--out", str(MODELS), "--fixed-model-name", target.name[: -len(".tar.gz")],
            ],
            cwd=ROOT,
            env={**os.environ, "RASA_TELEMETRY_ENABLED": "false"},
            stdout=sys.stderr,
        )
        if result.returncode != 0 or not target.exists():
            print("FEJL: træningen mislykkedes.", file=sys.stderr)
            sys.exit(result.returncode or 1)
        print(f"Modellen er trænet på {time.monotonic() - started:.0f} s.", file=sys.stderr)
    return target


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "ensure"
    if command == "path":
        print(model_path())
    elif command == "hash":
        print(data_hash())
    elif command == "ensure":
        print(ensure())
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
