"""The built-in data set: scikit-learn's breast-cancer data (569 tumours, 30 measurements each,
malignant or benign). It ships with scikit-learn, so the pipeline runs offline on day one.
"""

from __future__ import annotations

import pandas as pd


def builtin_dataset(target: str) -> pd.DataFrame:
    """The data, with the label as text in the column `target`."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame.drop(columns="target")
    frame[target] = [str(bunch.target_names[code]) for code in bunch.target]
    return frame
