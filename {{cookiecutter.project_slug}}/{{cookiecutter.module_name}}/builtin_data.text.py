"""The built-in data set: short English lines of the ChatterBot corpus (BSD-3-Clause), each
labelled with the topic of the conversations it comes from: ai, coding, emotion, psychology or
trivia. It ships with the `chatterbot-corpus` package, which the project installs, so the
pipeline runs offline on day one.

The corpus holds conversations per topic, as YAML files; each line of them is a text of its
topic, with its whitespace collapsed (an empty one is skipped). A line repeated within a topic
is kept once, and a line found under two topics (a greeting, say) is left out: its label would
be a coin toss. About 1,250 texts; `data.source: builtin` in params.yaml reads them
(dataset.py), and `make data-new` switches to a team's own CSV of texts and labels.
"""

from __future__ import annotations

from importlib.resources import files

import pandas as pd
import yaml

# The corpus's topics the model tells apart: its five largest, once duplicates are gone.
TOPICS = ("ai", "coding", "emotion", "psychology", "trivia")
TEXT = "text"


def builtin_dataset(target: str) -> pd.DataFrame:
    """The texts, in the column `text`, with their topic as the label in the column `target`."""
    folder = files("chatterbot_corpus") / "data" / "english"
    rows = []
    for topic in TOPICS:
        document = yaml.safe_load((folder / f"{topic}.yml").read_text(encoding="utf-8"))
        for conversation in document["conversations"]:
            lines = [" ".join(line.split()) for line in conversation if isinstance(line, str)]
            rows += [(line, topic) for line in lines if line]
    frame = pd.DataFrame(rows, columns=[TEXT, target]).drop_duplicates()
    topics = frame.groupby(TEXT)[target].nunique()
    return frame[frame[TEXT].map(topics) == 1].reset_index(drop=True)
