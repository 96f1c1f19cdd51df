"""Facts of the built-in data (the ChatterBot corpus's English lines by topic) and of a model
trained on it.

Every other test follows the data configured in params.yaml; the checks here only hold for the
built-in set, so this file skips itself when `data.source` is not `builtin`. After `make
data-new`, write the same kind of checks for your own texts here: behaviour the model must show
on them (an invariance, a direction), in the words of your problem.
"""

import pandas as pd
import pytest
from tables import is_builtin, kinds, splits

from {{ cookiecutter.module_name }}.dataset import (
    load_source,
)
from {{ cookiecutter.module_name }}.modeling.splits import (
    features_and_labels,
)
from {{ cookiecutter.module_name }}.modeling.train import (
    build_model,
)
from {{ cookiecutter.module_name }}.params import (
    load_params,
)

pytestmark = pytest.mark.skipif(
    not is_builtin(),
    reason="checks facts of the built-in ChatterBot texts; data.source in params.yaml is not "
    "builtin (write checks of your own data here)",
)

TOPICS = {"ai", "coding", "emotion", "psychology", "trivia"}


@pytest.fixture(scope="module")
def model():
    params = load_params()
    train, _ = splits(params)
    features, labels = features_and_labels(train, params.data.target, kinds())
    return build_model(params.train, kinds()).fit(features, labels)


def predict(model, *texts: str) -> list[str]:
    """The model's topics for texts, read as the pipeline reads them."""
    target = load_params().data.target
    frame = pd.DataFrame({"text": list(texts), target: ""})
    return list(model.predict(features_and_labels(frame, target, kinds())[0]))


def test_default_dataset_needs_no_network_and_has_each_text_once():
    frame = load_source(load_params().data)
    assert list(frame.columns) == ["text", "topic"]
    assert set(frame["topic"]) == TOPICS
    assert 1_200 <= len(frame) <= 1_300
    assert frame["text"].is_unique and (frame["text"].str.len() > 0).all()
    assert frame["topic"].value_counts().min() >= 100  # every topic has texts to learn from


def test_case_and_spacing_keep_the_topic(model):
    """Invariance: how a question is typed is not what it is about."""
    texts = ["What is a Python decorator?", "Who wrote Romeo and Juliet?", "I feel so lonely"]
    retyped = [f"  {text.upper()}  " for text in texts]
    assert predict(model, *texts) == predict(model, *retyped)


def test_words_of_a_topic_pull_towards_it(model):
    """Direction: a line about code is read as coding, one about feelings as emotion."""
    assert predict(model, "How do I write a for loop in Python?") == ["coding"]
    assert predict(model, "I am so happy today, it makes me smile") == ["emotion"]
