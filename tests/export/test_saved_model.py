"""The TF Serving SavedModel: signatures, parity with Keras, loading without bl_keras."""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import bl_keras
from bl_keras.data.preprocessing import decode_image, eval_preprocess, normalize
from bl_keras.export import __main__ as cli
from bl_keras.export.saved_model import export_saved_model
from tests.export.helpers import IMAGE_SIZE, encoded_image, small_model

HERE = pathlib.Path(__file__).resolve().parent
LABELS = ["disc", "square", "triangle", "ring", "cross"]
TOP_K = 3
JPEG_MAGIC = b"\xff\xd8"


def preprocess(encoded, image_size=IMAGE_SIZE):
    return normalize(eval_preprocess(decode_image(encoded), image_size)).numpy()


def keras_probabilities(model, encoded_images, image_size=IMAGE_SIZE):
    batch = np.stack([preprocess(e, image_size) for e in encoded_images])
    return model(batch, training=False).numpy()


@pytest.fixture(scope="module")
def exported(tmp_path_factory, request_images):
    """A softmax bL model saved as .keras, exported by the CLI with labels and top_k=3."""
    tmp = tmp_path_factory.mktemp("saved_model")
    model_path = tmp / "model.keras"
    small_model().save(model_path)
    labels = tmp / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    out = tmp / "serving" / "1"
    assert cli.main(["--model", str(model_path), "--output", str(out), "--labels", str(labels),
                     "--top_k", str(TOP_K), "--image_size", str(IMAGE_SIZE)]) == 0
    model = keras.models.load_model(model_path)
    expected = keras_probabilities(model, request_images)
    files = []
    for i, data in enumerate(request_images):
        suffix = "jpg" if data.startswith(JPEG_MAGIC) else "png"
        files.append(tmp / f"request{i}.{suffix}")
        files[-1].write_bytes(data)
    return dict(dir=out, model=model, expected=expected, files=files, tmp=tmp)


def top_k(probabilities, k):
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(probabilities, order, axis=1)


def test_loads_and_serves_without_bl_keras(exported):
    # A fresh interpreter that imports TensorFlow only: the SavedModel must carry everything.
    completed = subprocess.run(
        [sys.executable, str(HERE / "load_without_bl_keras.py"), str(exported["dir"]),
         *map(str, exported["files"])],
        capture_output=True, text=True, cwd=exported["tmp"],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["bl_keras_imported"] is False

    classes, probabilities = top_k(exported["expected"], TOP_K)
    served = result["first"]
    # Two JPEGs and two PNGs of four sizes, one batch: same ranking and scores as Keras.
    assert served["classes"] == classes.tolist()
    assert served["labels"] == [[LABELS[c] for c in row] for row in classes]
    np.testing.assert_allclose(served["probabilities"], probabilities, atol=1e-5)

    # One undecodable image fails its request; the next request is served as before.
    assert result["corrupt_error"] == "InvalidArgumentError"
    assert result["after_corrupt"]["classes"] == served["classes"]
    np.testing.assert_allclose(result["after_corrupt"]["probabilities"],
                               served["probabilities"], rtol=0, atol=0)


def saved_model_cli(*args):
    script = pathlib.Path(sys.executable).with_name("saved_model_cli")
    command = [str(script)] if script.exists() else [
        sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    completed = subprocess.run([*command, *args], capture_output=True, text=True,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def test_saved_model_cli_shows_both_signatures(exported):
    shown = saved_model_cli("show", "--dir", str(exported["dir"]), "--all")
    serving = shown.split("signature_def['serving_default']")[1].split("signature_def[")[0]
    assert re.search(r"inputs\['images'\] tensor_info:\s+dtype: DT_STRING\s+shape: \(-1\)",
                     serving)
    assert re.search(r"outputs\['classes'\] tensor_info:\s+dtype: DT_INT32\s+shape: \(-1, 3\)",
                     serving)
    assert re.search(r"outputs\['labels'\] tensor_info:\s+dtype: DT_STRING\s+shape: \(-1, 3\)",
                     serving)
    assert re.search(r"outputs\['probabilities'\] tensor_info:\s+dtype: DT_FLOAT\s+"
                     r"shape: \(-1, 3\)", serving)
    arrays = shown.split("signature_def['predict_images']")[1].split("signature_def[")[0]
    assert re.search(r"inputs\['images'\] tensor_info:\s+dtype: DT_FLOAT\s+"
                     r"shape: \(-1, -1, -1, 3\)", arrays)
    for key in ("logits", "probabilities"):
        assert re.search(rf"outputs\['{key}'\] tensor_info:\s+dtype: DT_FLOAT\s+"
                         rf"shape: \(-1, 5\)", arrays)


def test_saved_model_cli_runs_serving_default(exported, request_images):
    # saved_model_cli feeds string tensors from a pickled object array.
    requests = exported["tmp"] / "requests.npy"
    np.save(requests, np.array(request_images[:2], dtype=object), allow_pickle=True)
    printed = saved_model_cli("run", "--dir", str(exported["dir"]), "--tag_set", "serve",
                              "--signature_def", "serving_default",
                              "--inputs", f"images={requests}")
    classes = re.search(r"Result for output key classes:\n(\[\[.*?\]\])", printed, re.S)[1]
    labels = re.search(r"Result for output key labels:\n(\[\[.*?\]\])", printed, re.S)[1]
    expected, _ = top_k(exported["expected"][:2], TOP_K)
    assert [int(c) for c in re.findall(r"-?\d+", classes)] == expected.ravel().tolist()
    assert re.findall(r"b'(\w+)'", labels) == [LABELS[c] for c in expected.ravel()]


def test_predict_images_takes_any_size(exported):
    loaded = tf.saved_model.load(str(exported["dir"]))
    predict = loaded.signatures["predict_images"]
    for height, width in ((IMAGE_SIZE, IMAGE_SIZE), (80, 96)):
        images = np.random.default_rng(height).normal(size=(2, height, width, 3))
        images = images.astype(np.float32)
        out = predict(images=tf.constant(images))
        expected = exported["model"](images, training=False).numpy()
        np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-6)
        # The model ends in softmax: the logits are its log-probabilities.
        np.testing.assert_allclose(tf.nn.softmax(out["logits"]).numpy(), expected, atol=1e-6)


def test_logits_model_gets_softmax_in_the_graph(tmp_path, request_images):
    model = small_model(classifier_activation=None)
    export_saved_model(model, tmp_path / "1", top_k=10, image_size=IMAGE_SIZE)
    loaded = tf.saved_model.load(str(tmp_path / "1"))

    logits = keras_probabilities(model, request_images)  # logits here
    probabilities = tf.nn.softmax(logits).numpy()
    served = loaded.signatures["serving_default"](images=tf.constant(request_images))
    classes, top = top_k(probabilities, 5)  # top_k=10 is clamped to the 5 classes
    np.testing.assert_array_equal(served["classes"].numpy(), classes)
    np.testing.assert_allclose(served["probabilities"].numpy(), top, atol=1e-5)
    # Without a labels file the labels are the class ids.
    assert served["labels"].numpy().astype(str).tolist() == classes.astype(str).tolist()

    batch = np.stack([preprocess(e) for e in request_images])
    arrays = loaded.signatures["predict_images"](images=tf.constant(batch))
    np.testing.assert_allclose(arrays["logits"].numpy(), logits, atol=1e-5)
    np.testing.assert_allclose(arrays["probabilities"].numpy(), probabilities, atol=1e-6)


def xla_compiled_functions(saved_model_dir):
    """Names of functions and nodes in a SavedModel that demand XLA compilation."""
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((pathlib.Path(saved_model_dir) / "saved_model.pb").read_bytes())
    marked = []
    for meta_graph in proto.meta_graphs:
        graph = meta_graph.graph_def
        nodes = [*graph.node, *(n for f in graph.library.function for n in f.node_def)]
        marked += [n.name for n in nodes
                   if "_XlaMustCompile" in n.attr and n.attr["_XlaMustCompile"].b]
        marked += [f.signature.name for f in graph.library.function
                   if "_XlaMustCompile" in f.attr and f.attr["_XlaMustCompile"].b]
    return marked


def test_grouped_convolutions_export_without_xla(tmp_path, request_images):
    model = small_model("bl_resnext50_32x4d")
    # A plain Keras export keeps XLA-compiled functions (the saved gradients of the grouped
    # convolutions), which TF Serving does not run by default; bl_keras' export has none.
    plain = keras.export.ExportArchive()
    plain.track(model)
    plain.add_endpoint("serve", lambda x: model(x, training=False),
                       input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    plain.write_out(str(tmp_path / "keras_default"), verbose=False)
    assert xla_compiled_functions(tmp_path / "keras_default")

    export_saved_model(model, tmp_path / "1", image_size=IMAGE_SIZE)
    assert xla_compiled_functions(tmp_path / "1") == []
    shutil.rmtree(tmp_path / "keras_default")

    loaded = tf.saved_model.load(str(tmp_path / "1"))
    served = loaded.signatures["serving_default"](images=tf.constant(request_images))
    classes, top = top_k(keras_probabilities(model, request_images), 5)
    np.testing.assert_array_equal(served["classes"].numpy(), classes)
    np.testing.assert_allclose(served["probabilities"].numpy(), top, atol=1e-5)


def test_model_with_fixed_input_size_must_match_image_size(tmp_path):
    model = small_model(input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="takes 32x32 images, not 64"):
        export_saved_model(model, tmp_path / "1", image_size=64)


def test_full_bl_resnet50_exports_and_serves(tmp_path):
    # The real 1000-class model (random weights), at 224 with the default 256 resize.
    keras.utils.set_random_seed(0)
    model = bl_keras.models.get("bl_resnet50")
    export_saved_model(model, tmp_path / "1")
    images = [encoded_image(300, 400, "JPEG", seed=5), encoded_image(256, 200, "PNG", seed=6)]
    loaded = tf.saved_model.load(str(tmp_path / "1"))
    served = loaded.signatures["serving_default"](images=tf.constant(images))
    expected = keras_probabilities(model, images, image_size=224)
    classes, top = top_k(expected, 5)
    assert served["classes"].shape == (2, 5)
    np.testing.assert_array_equal(served["classes"].numpy()[:, 0], classes[:, 0])
    np.testing.assert_allclose(served["probabilities"].numpy(), top, atol=1e-5)


def test_existing_output_is_refused_unless_overwrite(exported, capsys):
    model_path = exported["tmp"] / "model.keras"
    saved = exported["dir"] / "saved_model.pb"
    before = saved.stat().st_mtime_ns
    with pytest.raises(SystemExit) as error:
        cli.main(["--model", str(model_path), "--output", str(exported["dir"]),
                  "--image_size", str(IMAGE_SIZE)])
    assert error.value.code == 2
    message = capsys.readouterr().err
    assert "directory is not empty" in message and "--overwrite" in message
    assert saved.stat().st_mtime_ns == before  # the deployed model is untouched

    tflite = exported["tmp"] / "model.tflite"
    tflite.write_bytes(b"an older model")
    with pytest.raises(SystemExit):
        cli.main(["--model", str(model_path), "--format", "tflite", "--output", str(tflite)])
    assert "file exists" in capsys.readouterr().err
    assert tflite.read_bytes() == b"an older model"

    again = exported["tmp"] / "again"
    shutil.copytree(exported["dir"], again)
    (again / "stale_file").write_text("left by an older export")
    assert cli.main(["--model", str(model_path), "--output", str(again), "--overwrite",
                     "--image_size", str(IMAGE_SIZE)]) == 0
    assert (again / "saved_model.pb").exists() and not (again / "stale_file").exists()


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.parse_args(["--help"])
    assert "(default: 224)" in capsys.readouterr().out
