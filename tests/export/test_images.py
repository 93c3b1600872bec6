"""Finding and preprocessing calibration images."""

import numpy as np
import pytest

from bl_keras.data.preprocessing import decode_image, eval_preprocess, normalize
from bl_keras.export.images import class_of, find_images, load_images
from tests.export.helpers import encoded_image


def test_find_images_spreads_a_limit_over_all_classes(image_folder):
    train = image_folder / "train"
    everything = find_images(train)
    assert len(everything) == 24  # 4 classes x 6
    picked = find_images(train, limit=8)
    assert len(picked) == 8
    assert sorted({class_of(p, str(train)) for p in picked}) == sorted(
        p.name for p in train.iterdir())
    # Both splits when given the root; no limit means every file.
    assert len(find_images(image_folder)) == 24 + 12


def test_flat_folder_and_undecodable_files(tmp_path, capsys):
    (tmp_path / "a.jpg").write_bytes(encoded_image(40, 50, "JPEG"))
    (tmp_path / "b.png").write_bytes(encoded_image(70, 30, "PNG", seed=1))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (tmp_path / "notes.txt").write_text("not an image")
    paths = find_images(tmp_path)
    assert [p.rsplit("/", 1)[1] for p in paths] == ["a.jpg", "b.png", "broken.png"]
    assert class_of(paths[0], str(tmp_path)) is None

    images, kept = load_images(paths, 32)
    assert kept == paths[:2]
    assert "skipping undecodable image" in capsys.readouterr().err
    assert images.shape == (2, 32, 32, 3) and images.dtype == np.float32
    expected = normalize(eval_preprocess(decode_image(encoded_image(70, 30, "PNG", seed=1)),
                                         32)).numpy()
    np.testing.assert_array_equal(images[1], expected)


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no images"):
        find_images(tmp_path)
