"""The workbench's child process: the steps that need the Rasa runtime or the tracker store.

    python -m trainer.tools review         # the review's findings, grouped (JSON on stdout)
    python -m trainer.tools conversation   # one conversation, CPR numbers masked (JSON on stdout)
    python -m trainer.tools retrain        # validate, train, measure, compare (progress in a file)

The request comes as JSON on stdin (so no secret is ever on a command line): the trainer
root, profile, var folder and evaluation sets (``trainer.jobs.request_for``), the tracker
store for review/conversation, the status file for retrain. Started by trainer.jobs with the
trainer's Python (``settings.trainer_python``).
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from trainer.files import TrainerError, write_text
from trainer.project import Project

_EPOCHS = re.compile(rb"Epochs:\s+(\d+)%")


def project_from(request: Dict[str, Any]) -> Project:
    return Project(Path(request["root"]), Path(request["profile_dir"]), Path(request["var_dir"]), sys.executable,
                   tuple(request.get("eval_sets") or ()), bool(request.get("story_tests", True)))


def tracker_url(tracker: Dict[str, Any]) -> Any:
    if tracker.get("kind") == "postgres":
        import sqlalchemy as sa

        return sa.engine.URL.create("postgresql", username=tracker.get("user"), password=tracker.get("password") or None,
                                    host=tracker.get("host"), port=tracker.get("port"), database=tracker.get("db"))
    return f"sqlite:///{tracker['path']}"


# --------------------------------------------------------------------------- review
def review(request: Dict[str, Any]) -> Dict[str, Any]:
    from trainer import conversations as conv_mod, review as review_mod

    now = float(request.get("now") or time.time())
    days = int(request.get("days") or 14)
    threshold = float(request.get("threshold") or 0.6)
    by_sender = conv_mod.load_events(tracker_url(request["tracker"]), since=now - days * 86400)
    convs = conv_mod.with_user_messages(conv_mod.conversations(by_sender))
    found = review_mod.findings(convs, threshold, float(request.get("abandoned_minutes") or 60) * 60, now)
    counts = {reason: sum(1 for f in found if f.reason == reason) for reason in review_mod.REASONS}
    return {"conversations": len(convs), "days": days, "counts": counts, "reasons": review_mod.REASONS,
            "groups": review_mod.groups(found, float(request.get("similarity") or 0.5))}


def conversation(request: Dict[str, Any]) -> Dict[str, Any]:
    """The session of ``sender`` that contains the moment ``at``, as a masked transcript."""
    from af_core import transcript
    from af_core.privacy import mask_cpr
    from trainer import conversations as conv_mod

    sender, at = str(request["sender"]), float(request["at"])
    by_sender = conv_mod.load_events(tracker_url(request["tracker"]), since=at - 1, until=at + 1)
    sessions = conv_mod.split_sessions(sender, by_sender.get(sender) or [])
    session = next((s for s in sessions if any(abs(float(e.get("timestamp") or 0) - at) < 0.001 for e in s.events)),
                   None)
    if session is None:
        return {"error": "Samtalen findes ikke længere (den kan være slettet efter opbevaringstiden)."}
    entries = transcript.entries({"events": session.events}, "Lederen")
    for entry in entries:
        entry["text"] = mask_cpr(entry["text"])[0]
        entry["marked"] = entry["who"] == "leader" and entry.get("at") is not None and abs(float(entry["at"]) - at) < 0.001
    return {"entries": entries, "started": session.start}


# --------------------------------------------------------------------------- retrain
class Status:
    """The job file the web server reads (trainer.jobs.status)."""

    def __init__(self, path: Path, job_id: str) -> None:
        self.path, self.job_id = path, job_id
        try:
            self.data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.data = {"id": job_id}
        self.data.update(id=job_id, state="running", pid=os.getpid())
        self._last = 0.0

    def write(self, **fields: Any) -> None:
        self.data.update(fields)
        write_text(self.path, json.dumps(self.data, ensure_ascii=False))

    def step(self, step: str, percent: float, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
        self.write(step=step, percent=round(percent, 1), message=message)

    def progress(self, percent: float) -> None:
        if time.monotonic() - self._last >= 1.0:  # at most once a second
            self._last = time.monotonic()
            self.write(percent=round(percent, 1))


def train(root: Path, progress: Callable[[float], None], job: str = "") -> Path:
    """The model for root's current data (scripts/model.py's name and lock), trained if needed,
    with DIET's epochs as progress (0..1).

    ``rasa train`` writes the archive straight to its ``--out`` folder and is not atomic, so it
    writes into a folder of its own (trainer.jobs.training_dir) and the finished model is moved
    into models/ in one step: a training that is stopped or crashes leaves no half-written
    model under the name the workbench would put into service."""
    import shutil

    from trainer import serving
    from trainer.jobs import TRAINING_DIR, training_dir

    with serving.project(root) as model:
        target = model.model_path()
        if target.exists():
            progress(1.0)
            return target
        (root / "var").mkdir(exist_ok=True)
        with open(root / "var" / "train.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            target = model.model_path()
            if target.exists():
                progress(1.0)
                return target
            shutil.rmtree(root / "models" / TRAINING_DIR, ignore_errors=True)  # left by an earlier stop or crash
            work = training_dir(root, job or f"pid-{os.getpid()}")
            work.mkdir(parents=True)
            rasa = Path(sys.executable).with_name("rasa")
            child = subprocess.Popen(
                [str(rasa), "train", "--config", "config.yml", "--domain", "domain", "--data", "data",
                 "--out", str(work), "--fixed-model-name", target.name[: -len(".tar.gz")]],
                cwd=root, env={**os.environ, "RASA_TELEMETRY_ENABLED": "false"},
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )
            tail = b""
            for chunk in iter(lambda: child.stdout.read1(4096), b""):
                sys.stderr.buffer.write(chunk)
                tail = (tail + chunk)[-4096:]
                found = _EPOCHS.findall(tail)
                if found:
                    progress(int(found[-1]) / 100.0)
            child.wait()
            built = work / target.name
            if child.returncode != 0 or not built.is_file():
                shutil.rmtree(work, ignore_errors=True)
                raise TrainerError("Træningen mislykkedes. Se var/traener/job.log.")
            os.replace(built, target)
            shutil.rmtree(work, ignore_errors=True)
    progress(1.0)
    return target


def story_tests(root: Path, model_path: Path) -> List[str]:
    """The names of the test stories (tests/stories) the model gets wrong; [] when all pass."""
    import asyncio
    import logging

    stories = root / "tests" / "stories"
    if not stories.is_dir():
        return []

    async def run() -> List[str]:
        from rasa.core import test as core_test
        from rasa.core.agent import Agent

        agent = Agent.load(str(model_path))
        generator = core_test._create_data_generator(str(stories), agent, None, False)
        evaluation, _, _ = await core_test._collect_story_predictions(
            generator.generate_story_trackers(), agent, False, use_e2e=False)
        return [str(getattr(t, "sender_id", "?")) for t in evaluation.failed_stories]

    logging.disable(logging.WARNING)
    try:
        return asyncio.run(run())
    finally:
        logging.disable(logging.NOTSET)


def summary(figures: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    if not figures:
        return None
    intents = figures["intents"]
    return {"model": figures.get("model"), "accuracy": intents["accuracy"], "weighted_f1": intents["weighted_f1"],
            "examples": intents["examples"], "sets": figures.get("sets", {})}


def retrain(request: Dict[str, Any]) -> Dict[str, Any]:
    from trainer import evaluation, retrain as retrain_mod, serving

    project = project_from(request)
    root = project.root
    status = Status(Path(request["status_file"]), request["job"])
    try:
        status.step("validate", 2, "Tjekker træningsdata …")
        ok, output = retrain_mod.validation(root)
        if not ok:
            raise TrainerError("Træningsdata har fejl, så der er ikke trænet en ny model. "
                               "Ret fejlen (se herunder), og start igen.\n" + output[-1500:])
        status.step("train", 5, "Træner den nye model. Det tager nogle minutter …")
        candidate = train(root, lambda f: status.progress(5 + 60 * f), job=str(request["job"]))
        serving_model = serving.guess_in_service(root, exclude=candidate)
        if serving.in_service(root) is None and serving_model is not None:
            serving._write_name(root / "models" / serving.POINTER, serving_model.name)
            serving.log(root, f"i drift: {serving_model.name} (fastholdt ved første træning i træner-værktøjet)")
        status.step("measure_candidate", 66, "Måler den nye model på testsættene …")
        new = evaluation.measure(project, candidate, lambda f: status.progress(66 + 14 * f))
        failed: List[str] = []
        if project.story_tests:
            status.step("stories", 80, "Kører testsamtalerne …")
            failed = story_tests(root, candidate)
        old = None
        if serving_model is not None and serving_model.exists() and serving_model.name != candidate.name:
            status.step("measure_serving", 88, "Måler modellen i drift på de samme testsæt …")
            old = evaluation.measure(project, serving_model, lambda f: status.progress(88 + 10 * f))
        status.step("verdict", 98, "Sammenligner …")
        verdict = retrain_mod.compare(new, old)
        if serving_model is not None and serving_model.name == candidate.name:
            verdict = {"kind": "same_model", "approved": False, "lines": verdict["lines"][:1] + [
                "Det er den samme model som den i drift: træningsdata er ikke ændret siden."]}
        if failed:
            verdict["approved"] = False
            verdict["lines"].append(f"{len(failed)} testsamtaler fejlede, så den skal ikke i drift endnu: "
                                    + ", ".join(failed[:10]) + ".")
        info = {"model": candidate.name, "in_service": serving_model.name if serving_model else None,
                "kind": verdict["kind"], "approved": verdict["approved"], "verdict": " ".join(verdict["lines"]),
                "by": request.get("user"), "at": time.time(), "how": "træner-værktøjet"}
        retrain_mod.write_candidate(root, info)
        comparison = {**info, "lines": verdict["lines"], "job": request["job"], "stories_failed": failed,
                      "stories_run": project.story_tests, "candidate": summary(new), "serving": summary(old),
                      **evaluation.differences(new, old)}
        write_text(project.var_dir / "sammenligning.json", json.dumps(comparison, ensure_ascii=False))
        status.write(state="done", step="done", percent=100, message="Færdig. Se sammenligningen herunder.",
                     finished_at=time.time(), model=candidate.name, kind=verdict["kind"], approved=verdict["approved"])
        return {"ok": True, "model": candidate.name}
    except TrainerError as exc:
        status.write(state="failed", message=str(exc), finished_at=time.time())
        return {"error": str(exc)}
    except Exception as exc:  # the page must say it stopped, never spin forever
        traceback.print_exc()
        status.write(state="failed", message=f"Træningen stoppede med en fejl: {exc}", finished_at=time.time())
        return {"error": str(exc)}


COMMANDS = {"review": review, "conversation": conversation, "retrain": retrain}


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    request = json.loads(sys.stdin.read() or "{}")
    try:
        answer = COMMANDS[argv[0]](request)
    except TrainerError as exc:
        answer = {"error": str(exc)}
    except Exception as exc:
        traceback.print_exc()
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(answer, ensure_ascii=False))
    return 0 if "error" not in answer else 1


if __name__ == "__main__":
    sys.exit(main())
