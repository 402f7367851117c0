"""bench/gpu.sh carries to a GPU machine the packages it lacks, at the versions the pipeline is tested with."""

import re
import subprocess

from workdir import ROOT


def pins(text):
    """{normalized name: version} of each name==version in the text."""
    return {
        re.sub(r"[-_.]+", "-", name).lower(): version
        for name, version in re.findall(r"(?<![\w.-])([A-Za-z][\w.-]*)==([\w.]+)", text)
    }


def test_the_carried_wheels_are_pinned_as_the_requirements_pin_them():
    script = (ROOT / "bench" / "gpu.sh").read_text()
    carried = pins(script[script.index("WHEELS=(") : script.index(")", script.index("WHEELS=("))])
    required = pins("".join((ROOT / name).read_text() for name in ("requirements-common.txt", "requirements-jax.txt")))
    assert {"keras", "pydantic", "dvclive", "dvc"} <= set(carried)
    shared = set(carried) & set(required)
    assert {name: carried[name] for name in shared} == {name: required[name] for name in shared}


def test_without_a_step_it_says_how_to_use_it():
    result = subprocess.run(["bash", ROOT / "bench" / "gpu.sh"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "bash bench/gpu.sh fetch" in result.stdout and "bash bench/gpu.sh run OUT" in result.stdout
