"""`image_for_captioner`: picture files and arrays made into captioner input."""

import numpy as np
import pytest
import tensorflow as tf

from tf_transformer.data import NUMBER_IMAGE_SHAPE, render_number
from tf_transformer.inference import image_for_captioner


@pytest.fixture(scope="module")
def picture():
    """A test picture of 427 as the captioner sees it: ink 1, background 0."""
    return render_number(427, "test")[0]


def write_png(path, pixels):
    path.write_bytes(tf.io.encode_png(pixels).numpy())
    return path


def test_a_captioner_picture_passes_unchanged(picture):
    result = image_for_captioner(picture)
    assert result.dtype == np.float32 and result.shape == NUMBER_IMAGE_SHAPE
    np.testing.assert_array_equal(result, picture)


def test_a_two_dimensional_array_gets_its_channel_axis(picture):
    np.testing.assert_array_equal(image_for_captioner(picture[:, :, 0]), picture)


def test_uint8_pixels_are_scaled_to_the_unit_range(picture):
    pixels = np.round(picture * 255).astype("uint8")
    np.testing.assert_allclose(image_for_captioner(pixels), pixels / 255, atol=1e-6)


def test_dark_ink_on_white_paper_is_inverted(picture):
    np.testing.assert_allclose(image_for_captioner(1.0 - picture), picture, atol=1e-6)


def test_a_mostly_dark_picture_is_not_inverted():
    sparse = np.zeros((8, 24), "float32")
    sparse[2:6, 20:22] = 0.9  # little ink: the mean stays below 0.5
    np.testing.assert_array_equal(image_for_captioner(sparse)[:, :, 0], sparse)


def test_colours_are_mixed_by_luminance():
    red, green, blue = np.eye(3, dtype="float32")
    rgb = np.zeros((8, 24, 3), "float32")
    rgb[:, :8], rgb[:, 8:16], rgb[:, 16:] = red, green, blue
    gray = image_for_captioner(rgb)[0, :, 0]  # mean 1/3: not inverted
    expected = tf.image.rgb_to_grayscale(rgb).numpy()[0, :, 0]
    np.testing.assert_allclose(gray, expected, atol=1e-3)


def test_transparent_pixels_are_white_paper(picture):
    # Black ink on a transparent background: RGB all 0, alpha = the ink.
    rgba = np.zeros((8, 24, 4), "float32")
    rgba[:, :, 3] = picture[:, :, 0]
    # (BT.601 weights sum to 0.9999)
    np.testing.assert_allclose(image_for_captioner(rgba), picture, atol=1e-3)


def test_a_picture_drawn_four_times_larger_comes_back_exactly(picture):
    large = np.kron(picture, np.ones((4, 4, 1), "float32"))  # (32, 96, 1)
    np.testing.assert_allclose(image_for_captioner(large), picture, atol=1e-6)


def test_a_smaller_picture_is_enlarged_to_the_captioner_size(picture):
    small = picture.reshape(4, 2, 12, 2, 1).mean(axis=(1, 3))  # half the size
    result = image_for_captioner(small)
    assert result.shape == NUMBER_IMAGE_SHAPE
    assert 0.0 <= result.min() and result.max() <= 1.0
    # Blurred, but the same strokes in the same places.
    assert np.corrcoef(result.ravel(), picture.ravel())[0, 1] > 0.6


def test_an_other_image_shape_is_honoured(picture):
    result = image_for_captioner(picture, (16, 48, 3))
    assert result.shape == (16, 48, 3)
    np.testing.assert_array_equal(result[..., 0], result[..., 2])


def test_an_8_bit_png_file_reads_as_its_pixels(picture, tmp_path):
    path = write_png(tmp_path / "427.png", np.round(picture * 255).astype("uint8"))
    np.testing.assert_allclose(image_for_captioner(path), picture, atol=0.5 / 255)
    np.testing.assert_allclose(image_for_captioner(str(path)), picture, atol=0.5 / 255)


def test_a_16_bit_png_file_reads_as_its_pixels(picture, tmp_path):
    pixels = np.round(picture * 65535).astype("uint16")
    path = write_png(tmp_path / "427.png", pixels)
    np.testing.assert_allclose(image_for_captioner(path), picture, atol=1e-4)


def test_a_colour_jpeg_of_dark_ink_reads_close_to_the_picture(picture, tmp_path):
    paper = np.round((1.0 - picture) * 255).astype("uint8")
    path = tmp_path / "427.jpg"
    path.write_bytes(tf.io.encode_jpeg(np.repeat(paper, 3, -1), quality=100).numpy())
    result = image_for_captioner(path)
    assert np.abs(result - picture).mean() < 0.05


def test_a_npy_file_reads_as_its_array(picture, tmp_path):
    path = tmp_path / "427.npy"
    np.save(path, picture)
    np.testing.assert_array_equal(image_for_captioner(path), picture)


def test_a_missing_file_is_named(tmp_path):
    path = tmp_path / "nowhere.png"
    with pytest.raises(FileNotFoundError, match="nowhere.png"):
        image_for_captioner(path)


@pytest.mark.parametrize("name", ["notes.png", "notes.npy", "notes.txt"])
def test_a_file_that_is_no_picture_is_named(name, tmp_path):
    path = tmp_path / name
    path.write_text("four hundred and twenty-seven")
    with pytest.raises(ValueError, match=name):
        image_for_captioner(path)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.full((8, 24), 16.0), r"\[0, 1\].*16\.0"),
        (np.full((8, 24), np.nan), r"\[0, 1\]"),
        (np.zeros((2, 8, 24, 1)), r"shape \(2, 8, 24, 1\)"),
        (np.zeros((8, 24, 5)), r"shape \(8, 24, 5\)"),
        (np.zeros((0, 24)), r"shape \(0, 24, 1\)"),
        (np.array([["a", "b"]]), "dtype <U1"),
    ],
)
def test_unusable_arrays_are_rejected_with_what_they_hold(array, message):
    with pytest.raises(ValueError, match=message):
        image_for_captioner(array)


def test_a_bad_image_shape_is_rejected(picture):
    with pytest.raises(ValueError, match="image_shape"):
        image_for_captioner(picture, (8, 24))
    with pytest.raises(ValueError, match="image_shape"):
        image_for_captioner(picture, (8, 0, 1))
