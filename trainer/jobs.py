"""Retraining in the background: one job at a time, its progress in a small JSON file.

``start`` launches ``python -m trainer.tools retrain`` (the trainer's Python, with Rasa) as a
child process in its own session, with the request on stdin and its output in
var/traener/job.log. The child writes var/traener/job.json as it goes (step, percent, a Danish
sentence); the web server only reads that file, so a page reload or a second trainer sees the
same progress. A job whose process is gone without finishing is reported as failed.

``stop`` ends a running job: the child and everything it started (``rasa train``) share one
process group, which gets SIGTERM and, if it is still there after ``STOP_WAIT`` seconds, SIGKILL.
The job then says "stopped". ``rasa train`` writes into a folder of its own under
models/ (trainer.tools.train) and the finished model is moved into models/ in one step, so a
stopped training leaves no half-written model that could be put into service; stop removes
that folder.

``run_tool`` runs a short command of the same child (the review, one conversation) and
returns its JSON answer.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

from af_core.settings import PROJECT_ROOT
from trainer.files import TrainerError, write_lock, write_text
from trainer.project import Project

STEPS = (
    ("validate", "Tjekker træningsdata"),
    ("train", "Træner den nye model"),
    ("measure_candidate", "Måler den nye model på testsættene"),
    ("stories", "Kører testsamtalerne"),
    ("measure_serving", "Måler modellen i drift på de samme testsæt"),
    ("verdict", "Sammenligner"),
)
TOOL_TIMEOUT = 180.0
STOP_WAIT = 10.0  # seconds a stopped training gets to end by itself before it is killed
TRAINING_DIR = ".under-traening"  # models/<this>/<job>/: where rasa train writes until the model is whole


class Busy(TrainerError):
    status = 409


class NotRunning(TrainerError):
    status = 409


def job_file(project: Project) -> Path:
    return project.var_dir / "job.json"


def comparison_file(project: Project) -> Path:
    return project.var_dir / "sammenligning.json"


def read_json(path: Path) -> Optional[Dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _alive(pid: Optional[int]) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a finished child of this process is a zombie until it is waited for
        done, _ = os.waitpid(int(pid), os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def status(project: Project) -> Dict[str, Any]:
    """The latest job as the page shows it (``state``: none, running, done, failed, stopped)."""
    job = read_json(job_file(project))
    if job is None:
        return {"state": "none", "steps": [label for _, label in STEPS]}
    if job.get("state") == "running" and not _alive(job.get("pid")) and time.time() - job.get("started_at", 0) > 5:
        job = {**job, "state": "failed", "message": "Træningen stoppede uventet. Se var/traener/job.log, "
                                                    "eller start den igen."}
    job["steps"] = [label for _, label in STEPS]
    return job


def child_env() -> Dict[str, str]:
    """The child's environment: this process's (the same settings), the code on the path, no telemetry."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PROJECT_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["RASA_TELEMETRY_ENABLED"] = "false"
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


def request_for(project: Project, **extra: Any) -> Dict[str, Any]:
    return {"root": str(project.root), "profile_dir": str(project.profile_dir), "var_dir": str(project.var_dir),
            "eval_sets": list(project.eval_sets), "story_tests": project.story_tests, **extra}


def can_train(project: Project) -> bool:
    """Whether the trainer's Python has Rasa (its ``rasa`` command beside it, as tools.train runs it).
    The app image (Python 3.12, no Rasa) has not; the trainer service on the Rasa image has."""
    return Path(project.python).with_name("rasa").is_file()


def start(project: Project, user: str, name: str) -> Dict[str, Any]:
    """Start retraining unless a job is running (Busy). Returns the new job's status."""
    if not can_train(project):
        raise TrainerError("Der kan ikke trænes en model her: serveren har ikke Rasa. Brug træner-værktøjet i "
                           "træner-tjenesten (se docs/deployment.md, \"Træner-værktøjet\"), eller bed en udvikler "
                           "om at sætte AF_TRAINER_PYTHON til en Python med Rasa.")
    with write_lock(project.root):
        current = status(project)
        if current["state"] == "running":
            started = time.strftime("%H:%M", time.localtime(current.get("started_at", 0)))
            raise Busy(f"{current.get('started_name') or current.get('started_by')} startede en træning "
                       f"kl. {started}. Vent, til den er færdig.")
        job_id = uuid.uuid4().hex[:12]
        project.var_dir.mkdir(parents=True, exist_ok=True)
        job = {"id": job_id, "state": "running", "step": "start", "percent": 0, "message": "Starter træningen …",
               "started_by": user, "started_name": name, "started_at": time.time(), "pid": None}
        write_text(job_file(project), json.dumps(job, ensure_ascii=False))
        log = open(project.var_dir / "job.log", "ab")
        try:
            child = subprocess.Popen(
                [project.python, "-m", "trainer.tools", "retrain"], cwd=str(PROJECT_ROOT), env=child_env(),
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        finally:
            log.close()
        # The child reads its whole request before it writes any progress: the pid is written first.
        job["pid"] = child.pid
        write_text(job_file(project), json.dumps(job, ensure_ascii=False))
        request = request_for(project, job=job_id, user=user, status_file=str(job_file(project)))
        child.stdin.write(json.dumps(request).encode("utf-8"))
        child.stdin.close()
    return status(project)


def training_dir(root: Path, job_id: str) -> Path:
    """Where ``rasa train`` of job ``job_id`` writes its model until it is complete."""
    return root / "models" / TRAINING_DIR / job_id


def _is_training(pid: int) -> bool:
    """Whether ``pid`` is still the workbench's child (not a number the system has given to another
    program since). Without /proc (not Linux) it cannot tell and trusts the job file."""
    proc = Path("/proc")
    if not (proc / "self").exists():
        return True
    try:
        return b"trainer.tools" in (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False


def _group_members(pgid: int) -> Optional[List[int]]:
    """The living processes (not zombies) of process group ``pgid``; None where /proc cannot tell."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _group_running(pgid: int) -> bool:
    try:  # the child of this process is a zombie until it is waited for
        os.waitpid(pgid, os.WNOHANG)
    except ChildProcessError:
        pass
    members = _group_members(pgid)
    if members is not None:
        return bool(members)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _kill_group(pgid: int) -> bool:
    """SIGTERM to the training's process group, SIGKILL after ``STOP_WAIT`` s; True once all are gone."""
    for sig, wait in ((signal.SIGTERM, STOP_WAIT), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return True
        except PermissionError as exc:
            raise TrainerError("Træningen kan ikke stoppes herfra: den kører som en anden bruger. "
                               "Spørg en udvikler.") from exc
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _group_running(pgid):
                return True
            time.sleep(0.1)
    return not _group_running(pgid)


def stop(project: Project, user: str, name: str) -> Dict[str, Any]:
    """Stop the running training (NotRunning when none runs). Returns the job's status: "stopped",
    or "done" when it finished before it could be stopped."""
    with write_lock(project.root):
        current = status(project)
        if current["state"] != "running":
            raise NotRunning("Der kører ingen træning lige nu.")
        pid = current.get("pid")
        if pid and _is_training(int(pid)) and not _kill_group(int(pid)):
            raise TrainerError("Træningen kunne ikke stoppes. Spørg en udvikler.")
        job = read_json(job_file(project)) or {k: v for k, v in current.items() if k != "steps"}
        if job.get("state") == "running":  # it did not finish by itself in the meantime
            job.update(state="stopped", message="Træningen blev stoppet.", stopped_by=user, stopped_name=name,
                       finished_at=time.time())
            write_text(job_file(project), json.dumps(job, ensure_ascii=False))
        if job.get("id"):
            shutil.rmtree(training_dir(project.root, str(job["id"])), ignore_errors=True)
        for leftover in project.var_dir.glob(f".{job_file(project).name}.*.tmp"):  # a write cut off by the kill
            leftover.unlink(missing_ok=True)
    return status(project)


def run_tool(project: Project, command: str, **arguments: Any) -> Dict[str, Any]:
    """A short child command (review, conversation): its JSON answer, or TrainerError in Danish."""
    request = request_for(project, **arguments)
    try:
        done = subprocess.run([project.python, "-m", "trainer.tools", command], cwd=str(PROJECT_ROOT),
                              env=child_env(), input=json.dumps(request).encode("utf-8"), capture_output=True,
                              timeout=TOOL_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise TrainerError("Det tog for lang tid at læse samtalerne. Prøv en kortere periode.") from exc
    except OSError as exc:
        raise TrainerError(f"Træner-værktøjets Python ({project.python}) kan ikke startes.") from exc
    try:
        answer = json.loads(done.stdout.decode("utf-8").strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise TrainerError("Samtalerne kunne ikke læses: "
                           + done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:][0][:300]
                           if done.stderr.strip() else "Samtalerne kunne ikke læses.")
    if "error" in answer:
        raise TrainerError(answer["error"])
    return answer
