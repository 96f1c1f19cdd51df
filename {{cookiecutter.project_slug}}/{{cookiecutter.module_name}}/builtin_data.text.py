"""The built-in data set: short English lines of the ChatterBot corpus (BSD-3-Clause), shipped
with the `chatterbot-corpus` package, each labelled with the topic of its conversations (ai,
coding, emotion, psychology or trivia): about 1,250 texts, so the pipeline runs offline on day one.
A line found under two topics (a greeting, say) is left out: its label would be a coin toss.
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
