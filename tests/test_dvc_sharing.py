"""Beyond one machine: a team's DVC remote, and a grid of experiments on the queue's workers."""

import json
import shlex
import subprocess
import time
from pathlib import Path

import psutil
import yaml
from test_pipeline import all_stages

from competition_data import zip_of
from src.submission import check_submission
from workdir import (
    ROOT,
    assert_no_secret,
    commit_all,
    dvc,
    dvc_status,
    environment_without_kaggle,
    git,
    kaggle_secrets,
    repro,
    stages_run,
)

SHARED_OUTPUTS = [
    "data/raw/train.csv",
    "data/prepared/train.npz",
    "models/members/base-42.keras",
    "submissions/submission.csv",
    "eval/metrics.json",
]
QUEUE_TIMEOUT_S = 600


EXP_SHOW = "dvc exp show --only-changed --drop 'Created|State|Executor|.*errors|.*/|requirements'"


def test_the_readme_compares_experiments_with_the_command_tested_here():
    assert EXP_SHOW in (ROOT / "README.md").read_text()


def test_credentials_switch_a_plain_repro_to_kaggle_and_a_teammate_without_them_pulls_it_and_reruns_nothing(
    own_project, kaggle_server, kaggle_env, tmp_path
):
    """The first run's project, on the offline sample, once Kaggle credentials are set up: the next plain
    `dvc repro` downloads the competition and reruns every stage on it. Pushed to the team's remote, it reaches a
    teammate with no credentials, whose `dvc pull` and `dvc repro` call Kaggle for nothing and rerun nothing."""
    project = own_project
    # A small competition-shaped zip: the sample's first 600 train and 200 test rows.
    files = tmp_path / "files"
    files.mkdir()
    for name, rows in (("train.csv", 600), ("test.csv", 200), ("sample_submission.csv", 200)):
        lines = (project / "data/raw" / name).read_bytes().split(b"\r\n")
        (files / name).write_bytes(b"\r\n".join(lines[: rows + 1]) + b"\r\n")
    kaggle_server.zip_bytes = zip_of(files)
    output = repro(project, kaggle_env)
    assert stages_run(output) == all_stages(project)[:-1]  # all but plots_page, whose page holds no data
    assert "source: using 'kaggle'" in output
    assert sorted(p.name for p in (project / "data/raw").iterdir()) == sorted(p.name for p in files.iterdir())
    assert (project / "data/raw/train.csv").read_bytes() == (files / "train.csv").read_bytes()
    assert set(yaml.safe_load((project / "eval/metrics.json").read_text())) == {"val"}  # Kaggle has no test labels
    check_submission(project / "submissions/submission.csv", files / "sample_submission.csv")
    assert_nothing_holds_the_key(project, output, kaggle_env)

    dvc(project, kaggle_env, "remote", "add", "-d", "team", str(tmp_path / "team-remote"))
    commit_all(project, "kaggle run")  # dvc.lock, the remote in .dvc/config, and the uncached metrics
    dvc(project, kaggle_env, "push")
    calls_before_the_teammate = (list(kaggle_server.calls), list(kaggle_server.file_gets))
    teammate = tmp_path / "teammate"
    git(tmp_path, "clone", "-q", str(project), str(teammate))
    # No credentials; Kaggle's address is still the fake server's, so any call the teammate made would show there.
    no_credentials = {k: v for k, v in kaggle_env.items() if k not in ("KAGGLE_USERNAME", "KAGGLE_KEY")}
    dvc(teammate, no_credentials, "pull")
    output = repro(teammate, no_credentials)

    assert stages_run(output) == ["source"], output
    expected = "source: using 'kaggle'. No Kaggle credentials were found, but the competition data is already here"
    assert expected in output
    for stage in ("download", "prepare", "train@base-42", "evaluate", "predict"):
        assert f"Stage '{stage}' didn't change, skipping" in output
    for name in SHARED_OUTPUTS:
        assert (teammate / name).read_bytes() == (project / name).read_bytes(), name
    assert dvc_status(teammate, no_credentials) == {"source": ["always changed"]}
    assert (kaggle_server.calls, kaggle_server.file_gets) == calls_before_the_teammate


def assert_nothing_holds_the_key(project, output, env):
    """The fake key, alone or in the Basic auth header, is in no file the pipeline wrote and not in its output.

    That is every file under the project but git's and the sources (the tests hold the fake key).
    """
    secrets = [secret.encode() for secret in kaggle_secrets(env)]
    sources = set(subprocess.run(["git", "ls-files"], cwd=project, capture_output=True, text=True).stdout.split())
    files = [
        path
        for path in project.rglob("*")
        if path.is_file()
        and ".git" not in path.relative_to(project).parts
        and str(path.relative_to(project)) not in sources
    ]
    assert any(path.name == "dvc.lock" for path in files) and len(files) > 20
    for path in files:
        data = path.read_bytes()
        assert not any(secret in data for secret in secrets), path
    assert_no_secret(env, output)


def queue_tasks(project, env):
    """{task name: status} from `dvc queue status`."""
    lines = dvc(project, env, "queue", "status").splitlines()
    rows = [line.split() for line in lines[1 : lines.index("")]] if "" in lines else []
    return {row[1]: row[-1] for row in rows}


def start_the_queue(project, env, log):
    """`dvc queue start -j 2`, its output in log: the workers it forks keep a pipe open until they exit."""
    with log.open("w") as output:
        started = subprocess.run(
            ["dvc", "queue", "start", "-j", "2"],
            cwd=project,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=120,
        )
    assert started.returncode == 0, log.read_text()
    return log.read_text()


def worker_logs(project):
    return "\n".join(
        f"--- {out.name}\n{out.read_text()[-3000:]}" for out in sorted((project / ".dvc/tmp/exps/celery").glob("*.out"))
    )


def wait_for_queue(project, env):
    """The tasks once none is queued or running; the workers' own idle shutdown is DVC's business, not waited on."""
    deadline = time.monotonic() + QUEUE_TIMEOUT_S
    while {"Queued", "Running"} & set((tasks := queue_tasks(project, env)).values()):
        assert time.monotonic() < deadline, (
            f"the queue is still busy after {QUEUE_TIMEOUT_S} s: {tasks}\n{worker_logs(project)}"
        )
        time.sleep(3)
    return tasks


def processes_in(folder):
    """Live processes working in folder or below it: the queue's workers and the stages they run."""
    found = []
    for process in psutil.process_iter():
        try:
            if Path(process.cwd()).is_relative_to(folder):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


def stop_the_queue(project, env):
    """Stop the workers and whatever they run; returns those still alive 30 s later, which it then kills."""
    subprocess.run(["dvc", "queue", "stop", "--kill"], cwd=project, env=env, capture_output=True, timeout=120)
    _, lingering = psutil.wait_procs(processes_in(project), timeout=30)
    for process in lingering:
        process.kill()
    return lingering


def experiments_shown(project, env):
    """{experiment name: (train.learning_rate, val accuracy)} from `dvc exp show --json`."""
    shown = {}
    for baseline in json.loads(dvc(project, env, "exp", "show", "--json")):
        for experiment in baseline.get("experiments") or []:
            data = experiment["revs"][0]["data"]
            shown[experiment["name"]] = (
                data["params"]["params.yaml"]["data"]["train"]["learning_rate"],
                data["metrics"]["eval/metrics.json"]["data"]["val"]["accuracy"],
            )
    return shown


def test_a_queued_grid_runs_on_two_workers_reruns_only_what_it_changes_and_exp_show_compares_it(own_project, tmp_path):
    """The first run committed, then a grid queued on it: each experiment restores the data stages from the cache
    and trains and scores its own member."""
    (tmp_path / "home").mkdir()
    offline = environment_without_kaggle(tmp_path / "home")
    project = own_project
    commit_all(project, "first run")
    queued = dvc(
        project,
        offline,
        "exp",
        "run",
        "--queue",
        "evaluate",  # what exp show compares; predict and export add nothing to what this tests
        "-S",
        "train.optimizer=adamw",
        "-S",
        "train.schedule=exponential",
        "-S",
        "train.learning_rate=0.003,0.03",
    )
    assert queued.count("Queued experiment") == 2, queued
    try:
        started = start_the_queue(project, offline, tmp_path / "queue-start.log")
        tasks = wait_for_queue(project, offline)
    finally:
        lingering = stop_the_queue(project, offline)
    assert "Started '2' new experiments task queue workers" in started
    assert not lingering, f"still running after `dvc queue stop --kill`: {lingering}"
    logs = {name: dvc(project, offline, "queue", "logs", name) for name in tasks}
    assert set(tasks.values()) == {"Success"} and len(tasks) == 2, logs

    shown = experiments_shown(project, offline)
    assert set(shown) == set(tasks)
    assert sorted(rate for rate, _ in shown.values()) == [0.003, 0.03]
    assert all(0 < accuracy <= 1 for _, accuracy in shown.values())
    for log in logs.values():
        assert "source: using 'sample'" in log, log
        assert stages_run(log) == ["source", "train@base-42", "evaluate"], log
    table = dvc(
        project,
        offline,
        "exp",
        "show",
        "--md",
        "--drop",
        ".*",
        "--keep",
        "Experiment|train.optimizer|train.schedule|train.learning_rate|val.accuracy|test.accuracy",
    )
    for column in ("train.optimizer", "train.schedule", "train.learning_rate", "val.accuracy", "test.accuracy"):
        assert column in table.splitlines()[0]
    print(f"\n$ dvc exp show --md ...\n{table}")
    # As the README shows it: in a 120-column terminal, the changed params and the ensemble's accuracy, whole.
    shown = dvc(project, {**offline, "COLUMNS": "120"}, "exp", "show", "--no-pager", *shlex.split(EXP_SHOW)[3:])
    header = shown.splitlines()[1].split()
    assert header[:3] == ["Experiment", "val.accuracy", "test.accuracy"], shown
    assert set(header[3:]) == {"train.optimizer", "train.schedule", "train.learning_rate"}, shown
    assert "…" not in shown and max(map(len, shown.splitlines())) <= 120, shown
