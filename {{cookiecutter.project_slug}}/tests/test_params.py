"""params.yaml as typed settings: coercion where YAML is ambiguous, one line for each mistake."""

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from {{ cookiecutter.module_name }}.modeling import (
    train as train_stage,
)
from {{ cookiecutter.module_name }}.params import (
    ParamsError,
    load_params,
)


@pytest.fixture
def write(tmp_path):
    """`write(change)`: the project's params.yaml with one edit applied, as a new file."""

    def edited(change) -> Path:
        document = yaml.safe_load(load_params().model_dump_json())
        change(document)
        path = tmp_path / "params.yaml"
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
        return path

    return edited


def test_the_projects_params_load():
    params = load_params()
    assert params.train.model in ("random_forest", "logistic_regression", "mlp")
    assert 0 < params.features.test_size < 1


def test_what_dvc_exp_run_writes_is_a_float(tmp_path, write):
    """`dvc exp run -S train.C=1e-6` writes `C: 1e-06`, which PyYAML reads as a string."""
    path = write(lambda document: None)
    text = re.sub(r"(?m)^  C: .*$", "  C: 1e-06", path.read_text())
    path.write_text(text, encoding="utf-8")
    assert yaml.safe_load(path.read_text())["train"]["C"] == "1e-06"
    assert load_params(path).train.C == 1e-6


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["train"].update(model="xgboost"), "train.model: Input should be"),
        (lambda d: d["train"].update(C=-1), "train.C: Input should be greater than 0 (got -1)"),
        (lambda d: d["features"].update(test_size=1.5), "features.test_size: Input should be"),
        (lambda d: d["gate"].update(compare_on="speed"), "gate.compare_on: Input should be"),
        (lambda d: d["energy"].update(country_iso_code="fr"), "energy.country_iso_code:"),
        (
            lambda d: d["train"].update(n_estimator=d["train"].pop("n_estimators")),
            "train.n_estimator: unknown key (did you mean n_estimators?)",
        ),
        (lambda d: d.pop("gate"), "gate: missing"),
        (
            lambda d: d.update(drift={"windw": 500}),
            "drift.windw: unknown key (did you mean window?)",
        ),
        (
            lambda d: d["gate"]["minimum"].update(accuracy=1.5),
            "gate.minimum.accuracy: Input should be less than or equal to 1 (got 1.5)",
        ),
        (
            lambda d: d["gate"]["minimum"].update(f1=0.9),
            "gate.minimum.f1.[key]: Input should be 'accuracy', 'f1_macro'",
        ),
        (
            lambda d: (
                d["data"].update(positive_label=None),
                d["gate"].update(compare_on="positive_f1"),
            ),
            "the gate uses positive_f1, which need data.positive_label",
        ),
        (
            lambda d: d["data"]["columns"].update({d["data"]["target"]: "category"}),
            "data.columns lists the target",
        ),
        (
            lambda d: d["data"].update(source="folder", folder=""),
            "data.source folder reads pictures: set data.folder and an `images:` section",
        ),
        (
            lambda d: d["train"].update(model="onnx", onnx_file=""),
            "train.model onnx reads pictures: set train.onnx_file and `images:`",
        ),
        (
            lambda d: d["data"]["columns"].update(some_column="date"),
            "data.columns.some_column: Input should be 'numeric', 'category', 'text', 'image' or "
            "'ignore'",
        ),
    ],
)
def test_a_bad_value_names_the_key_and_the_rule(write, change, message):
    with pytest.raises(ParamsError) as raised:
        load_params(write(change))
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_broken_yaml_names_the_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  source: [builtin\n", encoding="utf-8")
    with pytest.raises(ParamsError, match=r"params.yaml is not valid YAML \(line \d+\)"):
        load_params(path)


def test_a_stage_with_a_typo_in_params_says_one_line(write, tmp_path):
    path = write(lambda d: d["train"].update(max_dept=d["train"].pop("max_depth")))
    result = CliRunner().invoke(train_stage.app, ["--params-file", str(path)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "train: params.yaml: train.max_dept: unknown key (did you mean max_depth?)"
    ]
