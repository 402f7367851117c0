import json

import yaml

from competition_data import csv_text
from src import config
from src.leaderboard import COLUMNS, append_row, read_rows, what_was_submitted
from src.submission import sha256_of
from workdir import ROOT


def write(path, header, rows):
    path.write_text(csv_text(header, rows))
    return path


def test_a_row_is_appended_after_a_hand_edited_last_line(tmp_path):
    board = tmp_path / "leaderboard.csv"
    header, empty = ",".join(COLUMNS), "," * (len(COLUMNS) - 2)
    board.write_text(f"{header}\n2024-01-01T00:00:00Z,1{empty}")
    append_row(board, {"ref": "2", "status": "PENDING"})
    assert board.read_text() == f"{header}\n2024-01-01T00:00:00Z,1{empty}\n,2,PENDING{empty[1:]}\n"


def test_a_leaderboard_from_before_a_column_gets_it_and_keeps_every_value(tmp_path):
    board = tmp_path / "leaderboard.csv"
    old_columns = COLUMNS[:-1]
    values = [f"value {i}" for i in range(len(old_columns))]
    board.write_text(",".join(old_columns) + "\n" + ",".join(values) + "\n")
    append_row(board, {"ref": "2", "left_today": 4})
    columns, rows = read_rows(board)
    assert list(columns) == list(COLUMNS)
    assert rows[0] == {**dict(zip(old_columns, values, strict=True)), "left_today": ""}
    assert rows[1]["ref"] == "2" and rows[1]["left_today"] == "4"


def test_the_params_column_holds_all_of_params_yaml_by_dotted_name_keys_sorted(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    monkeypatch.chdir(tmp_path)
    submission = write(tmp_path / "submission.csv", ["ImageId", "Label"], [(i, i % 10) for i in range(1, 6)])
    params = config.load(ROOT / "params.yaml", {"train.epochs": 20, "ensemble.seeds": [1, 2]})
    row = what_was_submitted(submission, "seed CNN", params)
    column = json.loads(row.pop("params"))
    assert row == {
        "message": "seed CNN",
        "file": str(submission),
        "sha256": sha256_of(submission),
        "git_rev": "",
        "experiment": "",
    }  # not a git repository
    assert list(column) == sorted(column)
    assert column == config.flat(params)
    assert set(column) == set(config.flat(yaml.safe_load((ROOT / "params.yaml").read_text())))
    assert column["train.epochs"] == 20 and column["ensemble.seeds"] == [1, 2]
    assert column["data.competition"] == "digit-recognizer"
