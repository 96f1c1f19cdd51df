"""Slow tier: the `image` task as a team uses it, from a render to a drift report.

The option matrix's image render (`cycle-2`) with the Redis cache added (the one combination the
matrix does not make) is installed (`make setup`) and passes the checks every installed render
passes (tests/test_generated_projects.py skips `cycle-2` for it: one install less), then runs on
its built-in data (5,000 MNIST digits written as
PNG files): `make pipeline` promotes a model that knows the ten digits, the shipped suite is what
the suite command writes from that data, `make test-fast` and the service's slow tests (with a
real Redis-protocol server) are green, `make serve` answers an uploaded PNG (and 415 for a text
file, 422 for a damaged PNG), `make simulate-traffic` and `make drift` see the shifted pictures,
and its `make image` stays under 300 MB and answers an uploaded picture from a container. Then a
team's own pictures, a folder of coloured shapes in three classes (drawn at test time, PNG and
JPEG, several sizes), go through `make data-new` and the same commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from containers import built_image, image_size_mb, serving_container

from conftest import OPTION_SETS, render, run
from installed import check_installed_project
from project_shell import (
    free_port,
    make,
    predict_a_test_row,
    serving,
    skipped_lines,
    upload,
    user_env,
)

if TYPE_CHECKING:  # loaded for real by pytest_plugins, so that pytest may rewrite its asserts
    from docker_fixtures import DockerEngine

pytestmark = pytest.mark.slow
pytest_plugins = ["docker_fixtures"]
IMAGE_LIMIT_MB = 300

# The option matrix's render with the image task: installed here, not in test_generated_projects.
MATRIX_SET = "cycle-2"
PACKAGE = "handwritten_digits"
DIGITS = [str(digit) for digit in range(10)]
# Run with the project's own Python (numpy and Pillow are in its pipeline group): coloured shapes
# on dark backgrounds, three classes, several sizes, a quarter of them JPEG.
SHAPES = """
import sys
from pathlib import Path
import numpy as np
from PIL import Image, ImageDraw
rng = np.random.default_rng(5)
root = Path(sys.argv[1])
for shape in ("circle", "square", "triangle"):
    (root / shape).mkdir(parents=True)
    for index in range(100):
        side = int(rng.integers(24, 49))
        picture = Image.new("RGB", (side, side), tuple(int(v) for v in rng.integers(0, 90, 3)))
        draw = ImageDraw.Draw(picture)
        colour = tuple(int(v) for v in rng.integers(150, 256, 3))
        size = side * rng.uniform(0.6, 0.85)
        x, y = (rng.uniform(0, side - size) for _ in range(2))
        if shape == "circle":
            draw.ellipse([x, y, x + size, y + size], fill=colour)
        elif shape == "square":
            draw.rectangle([x, y, x + size, y + size], fill=colour)
        else:
            draw.polygon([(x, y + size), (x + size, y + size), (x + size / 2, y)], fill=colour)
        picture.save(root / shape / f"{shape}-{index:03d}.{'jpg' if index % 4 == 0 else 'png'}")
"""
# Reasons a test of the image project may skip: the facts of other kinds of data.
SKIP_REASONS = ("no numeric", "built-in MNIST")


@pytest.fixture(scope="module")
def project(tmp_path_factory, progress) -> tuple[Path, dict[str, str]]:
    """The matrix's image render with the Redis cache, installed, checked (its fast tests run
    in the tests below) and committed."""
    answers = {**OPTION_SETS[MATRIX_SET], "use_redis_cache": True}
    assert answers["task"] == "image"
    env = user_env(answers["python_version"])
    root = render(tmp_path_factory.mktemp("image-task"), answers)
    assert root.name == "handwritten-digits"
    progress("image task: render, make setup, lint, docs (about 2 min)")
    run(["make", "setup"], root, env)
    check_installed_project(root, answers, env, fast_tests=False)
    run(["git", "add", "--all"], root, env)
    run(["git", "commit", "--quiet", "-m", "Set up"], root, env)
    return root, env


def classes_and_promotion(root: Path) -> tuple[list[str], dict]:
    metrics = json.loads((root / "reports" / "metrics.json").read_text())
    return sorted(metrics["per_class"]), json.loads(
        (root / "reports" / "promotion.json").read_text()
    )


def project_tests_pass(root: Path, env: dict[str, str]) -> None:
    """`make test-fast`, then the service's slow tests against a real Redis-protocol server."""
    for command in (
        ["make", "test-fast"],
        [".venv/bin/pytest", "-m", "slow", "tests/api", "-q", "-rs", "-p", "no:cacheprovider"],
    ):
        tested = run(command, root, env).stdout
        assert " passed" in tested and " failed" not in tested, tested[-3000:]
        skipped = skipped_lines(tested)
        assert all(any(reason in line for reason in SKIP_REASONS) for line in skipped), skipped


def traffic_drifts(root: Path, env: dict[str, str], log: Path, classes: list[str]) -> None:
    with serving(root, env, log, port=free_port()) as url:
        answer = predict_a_test_row(url, root, "")
        assert sorted(answer["probabilities"]) == classes and answer["label"] in classes
        sent = run(
            ["make", "simulate-traffic", f"API_URL={url}", "TRAFFIC_ARGS=--rate 0"], root, env
        )
        assert "true labels added" in sent.stdout
    drift = make(root, env, "drift")
    assert "drift] Error 1" in drift.stderr, drift.stdout + drift.stderr
    assert "THE DATA HAS DRIFTED" in drift.stdout
    assert "Warning" not in drift.stdout + drift.stderr, drift.stderr
    assert (root / "reports" / "drift" / "data_drift.html").stat().st_size > 0


def test_built_in_digits_go_from_pipeline_to_drift(project, tmp_path, progress):
    root, env = project
    progress("image task, built-in digits: pipeline, suite, tests, serve, drift (~5 min)")
    run(["make", "pipeline"], root, env)
    classes, promotion = classes_and_promotion(root)
    assert classes == DIGITS and promotion["promoted"]
    assert promotion["candidate_metrics"]["accuracy"] >= 0.9
    written = tmp_path / "raw_data.json"
    run([".venv/bin/python", "-m", f"{PACKAGE}.suite", "--output-path", str(written)], root, env)
    assert written.read_text() == (root / "expectations" / "raw_data.json").read_text()
    project_tests_pass(root, env)

    picture = next((root / "data" / "raw" / "images" / "7").glob("*.png"))
    damaged = picture.read_bytes()[:60]
    with serving(root, env, tmp_path / "serve.log", port=free_port()) as url:
        status, _headers, text = upload(
            f"{url}/predict", "image", [(picture.name, picture.read_bytes(), "image/png")]
        )
        assert status == 200, text
        answer = json.loads(text)
        assert sorted(answer["probabilities"]) == DIGITS and answer["label"] in DIGITS
        assert abs(sum(answer["probabilities"].values()) - 1) < 1e-4
        status, _headers, text = upload(
            f"{url}/predict", "image", [("note.txt", b"not a picture", "text/plain")]
        )
        assert status == 415, text
        status, _headers, text = upload(
            f"{url}/predict", "image", [("cut.png", damaged, "image/png")]
        )
        assert status == 422, text
    traffic_drifts(root, env, tmp_path / "traffic.log", DIGITS)


def test_the_container_answers_an_uploaded_picture(project, docker_engine: DockerEngine):
    """`make image` of the image project (Pillow and python-multipart beside the service) stays
    under 300 MB on the local base, and the container answers an uploaded PNG."""
    root, env = project
    if not (root / "models" / "bundle" / "model.onnx").is_file():  # run alone, not after the above
        run(["make", "pipeline"], root, env)
    base = docker_engine.python_image(OPTION_SETS[MATRIX_SET]["python_version"])
    with built_image(root, env, docker_engine, base) as image:
        size = image_size_mb(docker_engine, image)
        assert size <= IMAGE_LIMIT_MB, f"the image is {size:.0f} MB"
        with serving_container(docker_engine, image) as container:
            picture = next((root / "data" / "raw" / "images" / "3").glob("*.png"))
            status, _headers, text = upload(
                f"{container.url}/predict",
                "image",
                [(picture.name, picture.read_bytes(), "image/png")],
            )
            assert status == 200, text + container.logs()
            assert json.loads(text)["label"] in DIGITS


def test_a_teams_own_pictures_go_all_the_way(project, tmp_path, progress):
    """A folder of `<label>/<picture>` files through `make data-new FOLDER=`, with the team's own
    gate (an MLP on 300 drawn shapes reaches about 0.8, not the digits' 0.9)."""
    root, env = project
    run(["git", "reset", "--hard", "--quiet"], root, env)  # DVC stages what it changes
    run(["git", "clean", "-fdxq", "-e", ".venv", "-e", ".tools"], root, env)
    progress("image task, a team's shapes: data-new, pipeline, tests, serve, drift (~4 min)")
    shapes = tmp_path / "shapes"
    run([str(root / ".venv" / "bin" / "python"), "-c", SHAPES, str(shapes)], root)
    added = run(["make", "data-new", f"FOLDER={shapes}"], root, env)
    assert "data-new:" in added.stdout, added.stdout
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert params["data"]["source"] == "folder"
    params["gate"]["minimum"] = {"accuracy": 0.6, "f1_macro": 0.6}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    run(["make", "pipeline"], root, env)
    classes, promotion = classes_and_promotion(root)
    assert classes == ["circle", "square", "triangle"] and promotion["promoted"]
    assert 0.6 <= promotion["candidate_metrics"]["accuracy"] < 1
    project_tests_pass(root, env)
    traffic_drifts(root, env, tmp_path / "serve.log", classes)
