"""Statements in the docs that the repository can check: what prefect.yaml defines, and the walkthrough's
pictures (made by scripts/screenshots.py) exist."""

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_production_md_counts_what_prefect_yaml_defines() -> None:
    deployments = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
    targets = {deployment["name"] for deployment in deployments}
    automations = sum(len(deployment.get("triggers") or ()) for deployment in deployments)
    text = (REPO / "docs" / "production.md").read_text()

    per_target = len(deployments) // len(targets)
    assert f"# {per_target} deployments per target" in text
    assert f"defines {len(deployments)} deployments and {automations} automations" in text
    assert "3 deployments per target" not in text and "4 label automations" not in text


def test_the_walkthrough_shows_pictures_that_exist() -> None:
    text = (REPO / "docs" / "walkthrough.md").read_text()
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)

    assert len(pictures) >= 5
    assert all((REPO / "docs" / picture).is_file() for picture in pictures), pictures
