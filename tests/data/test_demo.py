import os

import numpy as np
import pytest
from PIL import Image

from bl_keras.data import demo, imagefolder_source, make_demo_dataset

SMALL = dict(num_classes=4, train_per_class=3, val_per_class=2, image_size=32)


def tree(root):
    """{relative path: bytes} of every image file under root."""
    files = {}
    for directory, _, names in os.walk(root):
        for name in names:
            if name.endswith(".png"):
                path = os.path.join(directory, name)
                with open(path, "rb") as f:
                    files[os.path.relpath(path, root)] = f.read()
    return files


def test_same_seed_gives_identical_files(tmp_path):
    a = tree(make_demo_dataset(tmp_path / "a", seed=1, **SMALL))
    b = tree(make_demo_dataset(tmp_path / "b", seed=1, **SMALL))
    c = tree(make_demo_dataset(tmp_path / "c", seed=2, **SMALL))
    assert len(a) == 4 * (3 + 2)
    assert a == b
    assert a.keys() == c.keys() and a != c


def test_layout_classes_and_images(tmp_path):
    root = make_demo_dataset(tmp_path, seed=0, **SMALL)
    for split, count in (("train", 3), ("val", 2)):
        classes = sorted(os.listdir(tmp_path / split))
        assert classes == list(demo.CLASSES[:4])
        for name in classes:
            files = sorted(os.listdir(tmp_path / split / name))
            assert files == [f"{i:04d}.png" for i in range(count)]
    image = np.array(Image.open(tmp_path / "train" / classes[0] / "0000.png"))
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert image.std() > 10  # noise, shape and texture, not a blank
    source = imagefolder_source(root, "val")
    assert (source.num_examples, source.num_classes) == (8, 4)


def test_all_ten_classes_are_shape_texture_pairs():
    assert len(demo.CLASSES) == 10 == len(set(demo.CLASSES))
    assert list(demo.CLASSES) == sorted(demo.CLASSES)
    assert {c.split("_")[0] for c in demo.CLASSES} == set(demo.SHAPES)
    assert {c.split("_")[1] for c in demo.CLASSES} == set(demo.TEXTURES)


def test_textures_are_fine_detail_only():
    # Same random draws, different texture: the images differ inside the
    # shape, but 4x4 average pooling (a coarse view) removes nearly all of it.
    images = {t: demo.render(np.random.default_rng(0), "square", t, 64)
              .astype(float) for t in demo.TEXTURES}
    diff = np.abs(images["stripes"] - images["checker"])
    coarse = {t: x.reshape(16, 4, 16, 4, 3).mean(axis=(1, 3))
              for t, x in images.items()}
    coarse_diff = np.abs(coarse["stripes"] - coarse["checker"])
    assert diff.mean() > 10
    assert coarse_diff.mean() < 0.2 * diff.mean()


def test_existing_tree_is_reused_unless_parameters_change(tmp_path):
    make_demo_dataset(tmp_path, seed=0, **SMALL)
    victim = tmp_path / "val" / demo.CLASSES[0] / "0000.png"
    victim.unlink()
    make_demo_dataset(tmp_path, seed=0, **SMALL)
    assert not victim.exists()  # marker matched: nothing was regenerated
    make_demo_dataset(tmp_path, seed=0, **dict(SMALL, val_per_class=1))
    assert victim.exists()
    assert not (tmp_path / "val" / demo.CLASSES[0] / "0001.png").exists()


def test_an_interrupted_tree_is_rebuilt(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "render", fail)
    with pytest.raises(KeyboardInterrupt):
        make_demo_dataset(tmp_path, seed=0, **SMALL)
    monkeypatch.undo()
    make_demo_dataset(tmp_path, seed=0, **SMALL)
    assert len(tree(tmp_path)) == 4 * (3 + 2)


def test_refuses_to_write_into_a_foreign_tree(tmp_path):
    (tmp_path / "train" / "cats").mkdir(parents=True)
    with pytest.raises(FileExistsError):
        make_demo_dataset(tmp_path, **SMALL)


def test_command_line(tmp_path, capsys):
    demo.main(["--out", str(tmp_path), "--num-classes", "2",
               "--train-per-class", "1", "--val-per-class", "1",
               "--image-size", "16"])
    assert len(tree(tmp_path)) == 4
    assert str(tmp_path) in capsys.readouterr().out
