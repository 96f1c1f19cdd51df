"""Slow tier: a team's own table in a default render, as a team plugs it in.

Two real tables, written at test time from data that ships with scikit-learn: wine (178 rows,
13 numeric columns, three classes) under a header with spaces, capitals, `/` and `-`; and a table
derived from the breast-cancer set with numeric columns, two category columns (one made from a
numeric column, one drawn at random), a free-text note written from each row's measurements, and
a binary target. Each goes through `make data-new`, `make pipeline`, `make test-fast` (green, with
only the default-data file skipped), `make serve` with a real request whose answer lists every
class, `make simulate-traffic` and `make drift`. Then every file `make data-new` must refuse is
refused in one line, with the served model, the champion alias and params.yaml untouched.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest
import yaml

from conftest import OPTION_SETS, render, run
from project_shell import (
    free_port,
    make,
    predict_a_test_row,
    serving,
    skipped_lines,
    user_env,
)

pytestmark = pytest.mark.slow

PACKAGE = "breast_cancer_diagnosis"

# Scripts run with the project's own Python (scikit-learn is in its pipeline group).
WINE = """
import sys
from sklearn.datasets import load_wine
bunch = load_wine(as_frame=True)
frame = bunch.frame.drop(columns="target")
frame.columns = [
    "Alcohol", "Malic-Acid", "Ash", "Alcalinity of Ash", "Magnesium", "Total Phenols",
    "Flavanoids", "Nonflavanoid Phenols", "Proanthocyanins", "Color-Intensity", "Hue",
    "OD280/OD315 of Diluted Wines", "Proline",
]
frame["Wine Class"] = [bunch.target_names[code] for code in bunch.target]
frame.to_csv(sys.argv[1], index=False)
"""
MIXED = """
import sys
import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
data = load_breast_cancer(as_frame=True).frame
rng = np.random.default_rng(7)
frame = pd.DataFrame({
    "Radius (mm)": data["mean radius"].round(3),
    "Texture": data["mean texture"].round(3),
    "Concave Points": data["worst concave points"].round(5),
    "Smoothness": data["mean smoothness"].round(5),
    # A category made from a numeric column, and one that says nothing.
    "Size Band": pd.cut(data["mean area"], [0, 450, 800, 1e9], labels=["small", "medium", "large"]),
    "Clinic": rng.choice(["north", "south", "east"], len(data)),
})
shape = np.where(data["mean concave points"] > 0.05, "an irregular margin", "a smooth round margin")
extra = rng.choice(["no pain reported", "follow-up in six weeks", "family history noted",
                    "referred by the GP", "second opinion requested"], len(data))
frame["Free-Text Note"] = [
    f"Lesion of {r:.1f} mm with {s}; {e}." for r, s, e in zip(data["mean radius"], shape, extra)
]
frame["Outcome"] = np.where(data["target"] == 0, "malignant", "benign")
frame.to_csv(sys.argv[1], index=False)
"""
# name: (script, TARGET as the team types it, the target's clean name, the kinds to expect)
TABLES = {
    "wine": (
        WINE,
        "Wine Class",
        "wine_class",
        {
            "alcohol": "numeric",
            "malic_acid": "numeric",
            "alcalinity_of_ash": "numeric",
            "color_intensity": "numeric",
            "od280_od315_of_diluted_wines": "numeric",
        },
    ),
    "mixed": (
        MIXED,
        "Outcome",
        "outcome",
        {
            "radius_mm": "numeric",
            "size_band": "category",
            "clinic": "category",
            "free_text_note": "text",
        },
    ),
}
# Files `make data-new` must refuse: content (None: no file), TARGET, and what the line says.
BAD_FILES = {
    "missing target": (b"x,label\n1,a\n2,b\n3,a\n4,b\n", "colour", "has no such column"),
    "one class": (b"x,label\n" + b"".join(b"%d,a\n" % i for i in range(10)), "label", "one class"),
    "too many classes": (
        b"x,label\n" + b"".join(b"%d,%c\n" % (i, 97 + i // 2) for i in range(10)),
        "label",
        "5 classes, but with features.test_size 0.2 the 10 rows",
    ),
    "empty": (b"", "label", "is empty"),
    "not a csv": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "label", "is not UTF-8 text"),
    "semicolons": (b"x;label\n1;a\n2;b\n", "label", "separates its values with semicolons"),
    "no file": (None, "label", "is not a file"),
}


@pytest.fixture(scope="module")
def project(tmp_path_factory, progress) -> tuple[Path, dict[str, str]]:
    """The default render, installed and committed: each table starts from this state."""
    answers = OPTION_SETS["default"]
    env = user_env(answers["python_version"])
    root = render(tmp_path_factory.mktemp("team-data"), answers)
    progress("team data: render and make setup (about 1 min)")
    run(["make", "setup"], root, env)
    run(["git", "add", "--all"], root, env)
    run(["git", "commit", "--quiet", "-m", "Set up"], root, env)
    return root, env


def fresh(root: Path, env: dict[str, str]) -> None:
    """Back to the installed project: no data, models, runs or MLflow store of an earlier table."""
    run(["git", "reset", "--hard", "--quiet"], root, env)  # DVC stages what it changes
    run(["git", "clean", "-fdxq", "-e", ".venv", "-e", ".tools"], root, env)


def table(root: Path, name: str, folder: Path) -> Path:
    path = folder / f"{name}.csv"
    run([str(root / ".venv" / "bin" / "python"), "-c", TABLES[name][0], str(path)], root)
    return path


def test_data_with_spaces_or_categories_and_text_goes_all_the_way(project, tmp_path, progress):
    root, env = project
    for name, (_script, target, column, kinds) in TABLES.items():
        fresh(root, env)
        progress(f"team data, {name}: make data-new, pipeline, test-fast, serve, drift (~3 min)")
        path = table(root, name, tmp_path)
        added = run(["make", "data-new", f"CSV={path}", f"TARGET={target}"], root, env)
        assert f"data-new: {name}.csv is the project's data" in added.stdout, added.stdout

        data = yaml.safe_load((root / "params.yaml").read_text())["data"]
        assert (data["source"], data["target"], data["csv"]) == (
            "csv",
            column,
            f"data/external/{name}.csv",
        )
        assert data["columns"].items() >= kinds.items()
        assert (root / "data" / "external" / f"{name}.csv.dvc").is_file()
        suite = json.loads((root / "expectations" / "raw_data.json").read_text())
        columns = suite["expectations"][0]["kwargs"]["column_list"]
        assert column in columns and set(kinds) <= set(columns)  # the pipeline's clean names

        run(["make", "pipeline"], root, env)
        with (root / "data" / "raw" / "dataset.csv").open() as handle:
            classes = sorted({row[column] for row in csv.DictReader(handle)})
        metrics = json.loads((root / "reports" / "metrics.json").read_text())
        assert sorted(metrics["per_class"]) == classes
        assert json.loads((root / "reports" / "promotion.json").read_text())["promoted"]

        tested = run(["make", "test-fast"], root, env).stdout
        assert " passed" in tested and " failed" not in tested, tested[-3000:]
        skipped = skipped_lines(tested)
        assert all("tests/test_default_data.py" in line for line in skipped), skipped

        with serving(root, env, tmp_path / f"{name}-serve.log", port=free_port()) as url:
            answer = predict_a_test_row(url, root, column)
            assert sorted(answer["probabilities"]) == classes
            assert answer["label"] in classes
            sent = run(
                ["make", "simulate-traffic", f"API_URL={url}", "TRAFFIC_ARGS=--rate 0"], root, env
            )
            assert "true labels added" in sent.stdout
        drift = make(root, env, "drift")
        # The shifted traffic drifted: the command exits 1 (make says so, and exits 2).
        assert "drift] Error 1" in drift.stderr, drift.stdout + drift.stderr
        assert "THE DATA HAS DRIFTED" in drift.stdout
        assert (root / "reports" / "drift" / "data_drift.html").stat().st_size > 0


def served_state(root: Path, env: dict[str, str]) -> tuple[str, str, str]:
    """The served bundle's bytes, the registry's champion and params.yaml, to see nothing moved."""
    digest = hashlib.sha256()
    for path in sorted((root / "models" / "bundle").iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    check = run(
        [str(root / ".venv" / "bin" / "python"), "-m", f"{PACKAGE}.modeling.promote", "check"],
        root,
        env,
    )
    return digest.hexdigest(), check.stdout, (root / "params.yaml").read_text()


def test_every_bad_file_is_one_line_and_moves_nothing(project, tmp_path, progress):
    root, env = project
    fresh(root, env)
    progress("team data: the default pipeline, then seven files make data-new refuses")
    run(["make", "pipeline"], root, env)
    before = served_state(root, env)
    for case, (content, target, message) in BAD_FILES.items():
        path = tmp_path / f"{case.replace(' ', '-')}.csv"
        if content is not None:
            path.write_bytes(content)
        done = make(root, env, "data-new", f"CSV={path}", f"TARGET={target}")
        ours = [line for line in done.stderr.splitlines() if line.startswith("data-new: ")]
        assert done.returncode != 0, case
        assert len(ours) == 1 and message in ours[0], (case, done.stderr)
        assert "Traceback" not in done.stderr + done.stdout, case
        assert served_state(root, env) == before, case
