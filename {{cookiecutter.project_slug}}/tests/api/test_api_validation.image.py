"""What the prediction service of an image model refuses, through a test client: each picture it
cannot take gets its own status (413 too large, 415 not a PNG or JPEG, 422 damaged or missing)
and one line naming the picture and saying why."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from test_api import encoded, refused

from {{ cookiecutter.module_name }} import (
    images,
)


@pytest.mark.parametrize("kind", ["GIF", "BMP", "TIFF"])
def test_other_picture_types_get_415(client, api_bundle, kind):
    picture = images.decode(api_bundle.pictures[0].read_bytes())
    response = client.post(
        "/predict", files={"image": (f"digit.{kind.lower()}", encoded(picture, kind), "image/x")}
    )
    refused(response, 415, f"a {kind} image", "PNG or JPEG")


def test_a_file_over_the_byte_cap_gets_413_unread(client, api_settings):
    noise = np.random.default_rng(0).integers(0, 256, (80, 80, 3), dtype=np.uint8)
    data = encoded(Image.fromarray(noise))
    assert len(data) > api_settings.max_image_bytes
    response = client.post("/predict", files={"image": ("noise.png", data, "image/png")})
    refused(response, 413, f"{len(data):,} bytes", f"{api_settings.max_image_bytes:,}")


def test_a_picture_over_the_pixel_cap_gets_413_undecoded(client, api_settings):
    """A few kilobytes that would decode into 17 megapixels (a decompression bomb)."""
    data = encoded(Image.new("1", (4200, 4200)))
    assert len(data) < api_settings.max_image_bytes
    response = client.post("/predict", files={"image": ("bomb.png", data, "image/png")})
    refused(response, 413, "4200 x 4200 pixels", f"{images.MAX_PIXELS:,}")


@pytest.mark.parametrize("kept", [0.5, 20], ids=["half", "cut-in-header"])
def test_a_damaged_picture_gets_422(client, api_bundle, kept):
    """Cut in its pixels or inside its header (20 bytes: the signature and part of the size)."""
    name, data, media = api_bundle.upload(0)
    cut = data[: int(len(data) * kept) if kept < 1 else int(kept)]
    response = client.post("/predict", files={"image": (name, cut, media)})
    refused(response, 422, name, "damaged PNG")


def test_a_request_without_a_picture_gets_422_naming_the_field(client, api_bundle):
    refused(client.post("/predict", json={"image": "digit.png"}), 422, "image")
    response = client.post("/predict", files={"picture": api_bundle.upload(0)})
    assert refused(response, 422) == "image: Field required"
    refused(client.post("/predict/batch", files={"image": api_bundle.upload(0)}), 422, "images")


def test_a_batch_names_the_picture_it_cannot_take(client, api_bundle):
    files = [("images", api_bundle.upload(0)), ("images", ("note.txt", b"hello", "text/plain"))]
    refused(client.post("/predict/batch", files=files), 415, "images[1] (note.txt)")
    name, data, media = api_bundle.upload(2)
    files = [("images", api_bundle.upload(0)), ("images", (name, data[: len(data) // 2], media))]
    refused(client.post("/predict/batch", files=files), 422, f"images[1] ({name})")


def test_a_batch_over_the_size_limit_gets_422(client, api_bundle, api_settings):
    files = [("images", api_bundle.upload(0))] * (api_settings.max_batch_size + 1)
    refused(client.post("/predict/batch", files=files), 422, "images", "at most 8 items")


def test_a_body_over_the_body_cap_gets_413_before_it_is_parsed(client, api_settings):
    """Pictures each under the byte cap, too many for the body cap (and for a batch: the body's
    413 comes first)."""
    noise = np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    data = encoded(Image.fromarray(noise))
    assert len(data) < api_settings.max_image_bytes
    count = api_settings.max_body_bytes // len(data) + 1
    files = [("images", (f"{index}.png", data, "image/png")) for index in range(count)]
    response = client.post("/predict/batch", files=files)
    assert response.status_code == 413, response.text
