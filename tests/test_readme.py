"""The README's module map names every module in src/ with its current line count."""

import re

from workdir import ROOT


def test_the_module_map_lists_every_module_with_its_lines():
    readme = (ROOT / "README.md").read_text()
    mapped = dict(re.findall(r"^\| `(src/\w+\.py)` \| (\d+) \|", readme, re.MULTILINE))
    actual = {f"src/{path.name}": str(len(path.read_text().splitlines())) for path in (ROOT / "src").glob("*.py")}
    assert mapped == actual
