"""Posterior export: whole-utterance log-posteriors written as a Kaldi ark, with and without
priors, equal to the model run on each frame's 49-frame window."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bl_keras import models
from bl_keras.speech import features, posteriors

from .conftest import tone, write_wav

NUM_STATES = 6


def logsumexp(rows):
    top = rows.max(axis=-1, keepdims=True)
    return (top + np.log(np.exp(rows - top).sum(axis=-1, keepdims=True)))[..., 0]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    model = models.get("speech.bl_resnet22", num_states=NUM_STATES, alpha=4, beta=1)
    # Give the classifier some spread so log-softmax rows are far from uniform.
    kernel, _ = model.get_layer("classifier").get_weights()
    model.get_layer("classifier").set_weights(
        [kernel * 20, np.linspace(-1, 1, NUM_STATES).astype("float32")])
    path = tmp_path_factory.mktemp("model") / "acoustic.keras"
    model.save(path)
    return str(path)


@pytest.fixture(scope="module")
def loaded_model(model_path):
    return keras.models.load_model(model_path)


@pytest.fixture(scope="module")
def feats_scp(tmp_path_factory):
    import kaldiio

    root = tmp_path_factory.mktemp("post")
    rng = np.random.default_rng(0)
    statics = {"spk1_a": rng.normal(size=(9, 64)), "spk1_b": rng.normal(size=(30, 64)),
               "empty": np.zeros((0, 64))}
    statics = {k: (v * 2 + 5).astype("float32") for k, v in statics.items()}
    kaldiio.save_ark(str(root / "feats.ark"), statics, scp=str(root / "feats.scp"))
    alignments = root / "ali.txt"
    alignments.write_text("x 0 0 0 1 1 2 2 2 2 5\ny 3 3 0\n")  # state 4 never seen
    return root, statics, str(alignments)


def test_cli_writes_log_posteriors_and_pseudo_likelihoods(model_path, loaded_model, feats_scp,
                                                          capsys):
    import kaldiio

    root, statics, alignments = feats_scp
    plain, divided = str(root / "post.ark"), str(root / "loglik.ark")
    assert posteriors.main(["--model", model_path, "--feats", str(root / "feats.scp"),
                            "--output", plain, "--chunk_frames", "7"]) == 0
    assert posteriors.main(["--model", model_path, "--feats", str(root / "feats.scp"),
                            "--output", divided, "--priors_from_alignments", alignments]) == 0
    out = capsys.readouterr()
    assert "skipping utterance empty: no frames" in out.err
    assert "wrote log-posteriors of 2 utterances" in out.out

    post = dict(kaldiio.load_scp(str(root / "post.scp")))
    loglik = dict(kaldiio.load_ark(divided))
    assert sorted(post) == sorted(loglik) == ["spk1_a", "spk1_b"]
    for key in post:
        assert post[key].shape == (len(statics[key]), NUM_STATES)
        assert post[key].dtype == np.float32
        np.testing.assert_allclose(logsumexp(post[key]), 0.0, atol=1e-5)
        assert post[key].std() > 0.1  # not a uniform row

    # priors: counts 4, 2, 4, 2, 0, 1 of 13 frames; the unseen state is floored at 1e-8
    prior = np.array([4, 2, 4, 2, 0, 1]) / 13.0
    log_prior = np.log(np.maximum(prior, 1e-8))
    assert log_prior[4] == pytest.approx(-18.42068, abs=1e-5)
    for key in post:
        np.testing.assert_allclose(loglik[key] - post[key],
                                   np.broadcast_to(-log_prior, post[key].shape), atol=1e-5)

    # Frame t of the whole-utterance run equals the model on the window centred on t.
    feats = features.cmvn(features.deltas(statics["spk1_b"]))
    windows = features.context_windows(feats).numpy()
    frames = [0, 1, 13, 28, 29]
    logits = loaded_model(windows[frames], training=False)[:, 0]  # (5, 1, 6) -> (5, 6)
    np.testing.assert_allclose(post["spk1_b"][frames], tf.nn.log_softmax(logits).numpy(),
                               atol=1e-4)


def test_chunk_size_does_not_change_the_result(loaded_model):
    run = posteriors.model_function(loaded_model)
    feats = features.cmvn(features.deltas(
        np.random.default_rng(1).normal(size=(23, 64)).astype("float32")))
    whole = posteriors.log_posteriors(run, feats, chunk_frames=1000)
    assert whole.shape == (23, NUM_STATES)
    for chunk in (1, 5, 22):
        np.testing.assert_allclose(posteriors.log_posteriors(run, feats, chunk_frames=chunk),
                                   whole, atol=1e-5)


def test_audio_input_and_kaldi_style_prior_vector(model_path, tmp_path):
    import kaldiio

    wavs = tmp_path / "wavs"
    wavs.mkdir()
    write_wav(wavs / "u1.wav", tone(0.3, 8000, 440, 0), 8000)
    (tmp_path / "counts.txt").write_text("[ 10 20 30 40 0 0 ]\n")
    out = str(tmp_path / "o.ark")
    assert posteriors.main(["--model", model_path, "--audio", str(wavs), "--sample_rate",
                            "8000", "--output", out, "--priors",
                            str(tmp_path / "counts.txt"), "--prior_floor", "1e-6"]) == 0
    result = dict(kaldiio.load_ark(out))
    assert list(result) == ["u1"] and result["u1"].shape == (28, NUM_STATES)
    # Adding the log priors back gives log-softmax rows.
    log_prior = np.log(np.maximum(np.array([1, 2, 3, 4, 0, 0]) / 10.0, 1e-6))
    np.testing.assert_allclose(logsumexp(result["u1"] + log_prior), 0.0, atol=1e-5)


def test_prior_helpers_reject_bad_input(tmp_path):
    with pytest.raises(ValueError, match="positive sum"):
        posteriors.log_priors(np.zeros(3))
    (tmp_path / "p.txt").write_text("1 2 3")
    with pytest.raises(ValueError, match="3 priors for a model with 4 states"):
        posteriors.read_priors(str(tmp_path / "p.txt"), 4)
    (tmp_path / "ali.txt").write_text("u 0 7\n")
    with pytest.raises(ValueError, match="outside"):
        posteriors.state_counts(str(tmp_path / "ali.txt"), 4)


def test_help_names_the_command_and_shows_defaults(capsys):
    from bl_keras.speech import posteriors

    with pytest.raises(SystemExit):
        posteriors.main(["--help"])
    usage = capsys.readouterr().out
    assert usage.startswith("usage: python -m bl_keras.speech.posteriors") and "(default:" in usage
