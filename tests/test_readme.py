"""The README's module map names every module in src/ with its current line count."""

import re

from workdir import ROOT


def test_the_module_map_lists_every_module_with_its_lines():
    readme = (ROOT / "README.md").read_text()
    mapped = dict(re.findall(r"^\| `(src/\w+\.py)` \| (\d+) \|", readme, re.MULTILINE))
    actual = {f"src/{path.name}": str(len(path.read_text().splitlines())) for path in (ROOT / "src").glob("*.py")}
    assert mapped == actual


def test_every_pointer_to_a_readme_section_names_one_that_exists():
    headings = set(re.findall(r"^#+ (.+)$", (ROOT / "README.md").read_text(), re.MULTILINE))
    for path in [ROOT / "params.yaml", *sorted((ROOT / "src").glob("*.py")), *sorted((ROOT / "recipes").glob("*"))]:
        for section in re.findall(r"README: ([A-Z][\w ]*\w)", path.read_text()):
            assert section in headings, f"{path.name} points to README section {section!r}"


def test_the_readme_is_a_guide_of_at_most_400_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 400
