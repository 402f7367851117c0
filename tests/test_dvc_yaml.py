"""dvc.yaml names exactly the code each stage runs: an edit to any module a stage imports reruns it."""

import ast
import re

import pytest
import yaml

from workdir import ROOT

PACKAGE = "src"


def stage_code(cmd, root=ROOT):
    """The project files that `python -m src.<module>` in cmd runs: the package, the module and every project
    module it imports, directly or through others, at the top or inside a function."""
    entry = re.search(rf"python -m {PACKAGE}\.(\w+)", cmd)
    assert entry, f"no `python -m {PACKAGE}.<module>` in {cmd!r}"
    files, todo = {f"{PACKAGE}/__init__.py"}, [f"{PACKAGE}/{entry.group(1)}.py"]
    while todo:
        path = todo.pop()
        if path in files:
            continue
        files.add(path)
        todo.extend(imported_files(root / path, root))
    return files


def imported_files(path, root):
    """The project modules that the source file at path imports."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 or node.module == PACKAGE or (node.module or "").startswith(f"{PACKAGE}."):
                base = node.module.removeprefix(PACKAGE).lstrip(".") if node.module and node.level == 0 else node.module
                # `from . import config` names modules; `from .config import load` names one module's contents
                names = [base] if base else [alias.name for alias in node.names]
                found += [f"{PACKAGE}/{name.replace('.', '/')}.py" for name in names]
        elif isinstance(node, ast.Import):
            found += [
                f"{alias.name.replace('.', '/')}.py" for alias in node.names if alias.name.startswith(f"{PACKAGE}.")
            ]
    return [name for name in found if (root / name).is_file()]


def declared_code(stage):
    return {dep for dep in stage.get("deps", []) if isinstance(dep, str) and dep.startswith(f"{PACKAGE}/")}


def misdeclared(dvc_yaml, root=ROOT):
    """{stage: (code it runs that deps omit, code deps name that it does not run)} for each stage that is off."""
    stages = yaml.safe_load(dvc_yaml)["stages"]
    problems = {}
    for name, stage in stages.items():
        runs, declared = stage_code(stage["cmd"], root), declared_code(stage)
        if runs != declared:
            problems[name] = (sorted(runs - declared), sorted(declared - runs))
    return problems


def test_every_stage_depends_on_exactly_the_code_it_runs():
    assert misdeclared((ROOT / "dvc.yaml").read_text()) == {}


def test_a_stage_missing_a_module_it_imports_is_caught(tmp_path):
    (tmp_path / PACKAGE).mkdir()
    (tmp_path / PACKAGE / "__init__.py").write_text("")
    (tmp_path / PACKAGE / "stage.py").write_text("from . import helper\n\ndef main():\n    from .inner import x\n")
    (tmp_path / PACKAGE / "helper.py").write_text("import os\nfrom src.deep import y\n")
    (tmp_path / PACKAGE / "inner.py").write_text("")
    (tmp_path / PACKAGE / "deep.py").write_text("")
    exact = ["src/__init__.py", "src/stage.py", "src/helper.py", "src/inner.py", "src/deep.py"]

    def dvc_yaml(deps):
        return yaml.safe_dump({"stages": {"s": {"cmd": "python -m src.stage in out", "deps": [*deps, "data/in"]}}})

    assert misdeclared(dvc_yaml(exact), tmp_path) == {}
    assert misdeclared(dvc_yaml(exact[:-1]), tmp_path) == {"s": (["src/deep.py"], [])}
    assert misdeclared(dvc_yaml([*exact, "src/other.py"]), tmp_path) == {"s": ([], ["src/other.py"])}


@pytest.mark.parametrize("section", ["runtime"])
def test_no_stage_depends_on_how_the_work_runs(section):
    """Thread pools, inference batches and Kaggle retries change no result: changing them reruns nothing."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        assert not [p for p in stage.get("params", []) if str(p).split(".")[0] == section], name
