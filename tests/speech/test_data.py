"""The speech input pipeline: Kaldi and audio sources, skips, determinism, sharding, resumption."""

import numpy as np
import pytest
import tensorflow as tf

from bl_keras.speech import corpus, data, features

from .conftest import KALDI_FRAMES, MISMATCHED, MISSING, tone, write_wav

CACHE = [pytest.param(True, id="cached"), pytest.param(False, id="streamed")]


def kaldi(kaldi_data, **kwargs):
    options = dict(alignments=kaldi_data.alignments, num_states=kaldi_data.num_states,
                   seed=0, batch_size=8, training=False)
    options.update(kwargs)
    return data.build_speech_dataset("kaldi", kaldi_data.scp, **options)


def labels_of(dataset, batches=None):
    taken = dataset if batches is None else dataset.take(batches)
    return np.concatenate([y.numpy() for _, y in taken])


def context(index, num_pipelines):
    return tf.distribute.InputContext(num_input_pipelines=num_pipelines,
                                      input_pipeline_id=index, num_replicas_in_sync=num_pipelines)


@pytest.mark.parametrize("cache", CACHE)
def test_kaldi_eval_yields_every_frame_in_order_and_skips_bad_utterances(kaldi_data, cache,
                                                                         capsys):
    info = kaldi(kaldi_data, cache=cache, chunk_utterances=3)
    batches = list(info.dataset)
    windows = np.concatenate([x.numpy() for x, _ in batches])
    labels = np.concatenate([y.numpy() for _, y in batches])
    assert windows.shape == (kaldi_data.valid_frames, 64, 49, 3)
    assert windows.dtype == np.float32 and labels.dtype == np.int32
    np.testing.assert_array_equal(labels, np.concatenate([kaldi_data.labels[k]
                                                          for k in kaldi_data.valid]))
    # The windows are the features of utt0, utt1, ... frame by frame.
    np.testing.assert_allclose(windows[:KALDI_FRAMES["utt0"]],
                               kaldi_data.expected_windows("utt0"), atol=1e-5)
    np.testing.assert_allclose(windows[-KALDI_FRAMES["utt7"]:],
                               kaldi_data.expected_windows("utt7"), atol=1e-5)
    assert [len(y) for _, y in batches][-1] == kaldi_data.valid_frames % 8  # remainder kept
    assert info.num_skipped == 2
    assert info.num_examples == kaldi_data.label_frames == 188
    assert info.num_classes == kaldi_data.num_states and info.num_utterances == 8
    err = capsys.readouterr().err
    assert f"skipping utterance {MISSING}: no alignment" in err
    assert f"skipping utterance {MISMATCHED}: 29 feature frames but 30 labels" in err


@pytest.mark.parametrize("cache", CACHE)
def test_training_epochs_are_permutations_of_all_frames_and_bad_ones_reported_once(
        kaldi_data, cache, capsys):
    n = kaldi_data.valid_frames
    assert n == 2 * 79
    info = kaldi(kaldi_data, cache=cache, training=True, batch_size=79, chunk_utterances=2)
    labels = labels_of(info.dataset, 6)  # three epochs
    everything = np.sort(np.concatenate([kaldi_data.labels[k] for k in kaldi_data.valid]))
    for epoch in range(3):
        np.testing.assert_array_equal(np.sort(labels[epoch * n:(epoch + 1) * n]), everything)
    assert not np.array_equal(labels[:n], labels[n:2 * n])  # reshuffled every epoch
    assert not np.array_equal(labels[:n], np.sort(labels[:n]))
    err = capsys.readouterr().err
    assert err.count(f"skipping utterance {MISMATCHED}") == 1
    assert err.count(f"skipping utterance {MISSING}") == 1
    assert info.num_skipped == 2


@pytest.mark.parametrize("cache", CACHE)
def test_training_is_deterministic_given_the_seed(kaldi_data, cache):
    def first(seed):
        info = kaldi(kaldi_data, cache=cache, training=True, seed=seed, chunk_utterances=2)
        x, _ = next(iter(info.dataset))
        return x.numpy(), labels_of(info.dataset, 40)

    (x1, a), (x2, b), (_, c) = first(3), first(3), first(4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(x1, x2)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("cache", CACHE)
def test_skip_examples_continues_the_stream_exactly(kaldi_data, cache, tmp_path):
    # Streamed pipelines count positions by the labels, so they resume exactly when no
    # utterance is found bad; cached ones validate first and resume exactly regardless.
    scp = kaldi_data.scp
    if not cache:
        scp = str(tmp_path / "clean.scp")
        with open(kaldi_data.scp) as f, open(scp, "w") as out:
            out.writelines(line for line in f if line.split()[0] in kaldi_data.valid)

    def stream(skip, count):
        info = data.build_speech_dataset(
            "kaldi", scp, alignments=kaldi_data.alignments, num_states=kaldi_data.num_states,
            seed=0, batch_size=1, training=True, cache=cache, chunk_utterances=2,
            skip_examples=skip)
        return labels_of(info.dataset, count)

    n = kaldi_data.valid_frames
    full = stream(0, 3 * n)
    for skip in (5, 61, n + 37):  # inside the first chunk, a later chunk, the next epoch
        np.testing.assert_array_equal(stream(skip, 100), full[skip:skip + 100])


def test_streamed_resume_after_a_bad_utterance_is_shifted_by_its_label_frames(kaldi_data):
    # The documented caveat: utt5 (30 labels, unusable) is counted but yields nothing.
    def stream(skip, count):
        return labels_of(kaldi(kaldi_data, training=True, batch_size=1, chunk_utterances=8,
                               skip_examples=skip).dataset, count)

    n = kaldi_data.valid_frames  # actual frames per epoch; the labels count n + 30
    full = stream(0, n + 50)
    # Skipping n + 30 examples jumps to the start of epoch 1 by the label count, which the
    # uninterrupted stream reached after n examples: 30 examples are seen again.
    np.testing.assert_array_equal(stream(n + 30, 20), full[n:n + 20])


@pytest.mark.parametrize("cache", CACHE)
def test_shards_are_disjoint_and_cover_every_frame(kaldi_data, cache):
    parts = [labels_of(kaldi(kaldi_data, cache=cache, input_context=context(i, 3)).dataset)
             for i in range(3)]
    union = np.concatenate(parts)
    assert len(union) == len(set(union.tolist())) == kaldi_data.valid_frames
    # utts 0, 3 (no alignment), 6 / 1, 4, 7 / 2, 5 (mismatch)
    assert [len(p) for p in parts] == [23 + 12, 31 + 40 + 35, 17]
    # Training shards too: the first epoch of each pipeline holds only its own frames.
    trained = labels_of(kaldi(kaldi_data, cache=cache, training=True, batch_size=1, seed=5,
                              input_context=context(1, 3)).dataset, 106)
    np.testing.assert_array_equal(np.sort(trained), np.sort(parts[1]))


def test_audio_source_computes_features_and_skips_bad_files(audio_dir, capsys):
    info = data.build_speech_dataset("audio", str(audio_dir), sample_rate=8000, training=False,
                                     batch_size=16, seed=0, cache=True)
    windows = np.concatenate([x.numpy() for x, _ in info.dataset])
    labels = np.concatenate([y.numpy() for _, y in info.dataset])
    frames = {k: features.num_frames(int(s * 8000), 8000)
              for k, s in (("a", 0.5), ("b", 0.33), ("sub/c", 0.71))}
    assert frames == {"a": 48, "b": 31, "sub/c": 69}
    assert len(labels) == sum(frames.values())
    # Sorted ids: a, b, corrupt, short, sub/c, unlabelled, wide; labels are t % 4 + file index.
    expected = np.concatenate([np.arange(frames[k]) % 4 + i for i, k in
                               enumerate(("a", "b", "sub/c"))])
    np.testing.assert_array_equal(labels, expected)
    decoded = tf.audio.decode_wav(tf.io.read_file(str(audio_dir / "b.wav")))[0][:, 0]
    reference = features.context_windows(features.utterance_features(decoded, 8000)).numpy()
    np.testing.assert_allclose(windows[48:48 + 31], reference, atol=1e-4)
    assert info.num_skipped == 4 and info.num_classes == 6  # labels up to 2 + 3 = 5
    err = capsys.readouterr().err
    assert "skipping utterance corrupt: undecodable wav" in err
    assert "skipping utterance wide: sample rate 16000 Hz, expected 8000" in err
    assert "skipping utterance short: 38 feature frames but 37 labels" in err
    assert "skipping utterance unlabelled: no labels" in err


def test_audio_streamed_equals_cached(audio_dir):
    def evaluate(cache):
        info = data.build_speech_dataset("audio", str(audio_dir), sample_rate=8000,
                                         training=False, batch_size=32, seed=0, cache=cache,
                                         chunk_utterances=2)
        return (np.concatenate([x.numpy() for x, _ in info.dataset]),
                np.concatenate([y.numpy() for _, y in info.dataset]))

    (x1, y1), (x2, y2) = evaluate(True), evaluate(False)
    assert len(y1) == 148
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(x1, x2)


def test_audio_list_file_and_label_range(audio_dir, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"{audio_dir}/a.wav\n\n{audio_dir}/sub/c.wav\n")
    ids = [key for key, _ in corpus.list_wavs(str(listing))]
    assert len(ids) == 2 and ids[0].endswith("/a") and ids[1].endswith("/sub/c")
    with pytest.raises(ValueError, match="outside"):
        data.build_speech_dataset("audio", str(listing), num_states=3, sample_rate=8000,
                                  training=False, batch_size=4, seed=0)


def test_kaldi_requires_num_states_and_alignments(kaldi_data):
    with pytest.raises(ValueError, match="num_states"):
        data.build_speech_dataset("kaldi", kaldi_data.scp, alignments=kaldi_data.alignments,
                                  training=False, batch_size=4, seed=0)
    with pytest.raises(ValueError, match="alignments"):
        data.build_speech_dataset("kaldi", kaldi_data.scp, num_states=10, training=False,
                                  batch_size=4, seed=0)
    with pytest.raises(ValueError, match="outside"):
        kaldi(kaldi_data, num_states=100)


def test_wrong_feature_dimension_raises(tmp_path):
    import kaldiio

    kaldiio.save_ark(str(tmp_path / "f.ark"), {"u": np.zeros((5, 40), "float32")},
                     scp=str(tmp_path / "f.scp"))
    (tmp_path / "ali.txt").write_text("u 0 0 0 0 0\n")
    with pytest.raises(ValueError, match="log-mel"):
        data.build_speech_dataset("kaldi", str(tmp_path / "f.scp"),
                                  alignments=str(tmp_path / "ali.txt"), num_states=2,
                                  training=False, batch_size=4, seed=0, cache=True)


def test_stats_read_only_the_labels(kaldi_data, audio_dir):
    assert data.speech_data_stats("kaldi", kaldi_data.scp, alignments=kaldi_data.alignments,
                                  num_states=500) == (188, 500, 8)
    assert data.speech_data_stats("audio", str(audio_dir), sample_rate=8000) == (
        48 + 31 + 69 + 3 + 28 + 37, 6, 7)


def test_alignment_text_with_blank_lines(tmp_path):
    path = tmp_path / "ali.txt"
    path.write_text("u1 3 3 4 \n\nu2 0\n")
    parsed = corpus.read_alignments(str(path))
    assert {k: v.tolist() for k, v in parsed.items()} == {"u1": [3, 3, 4], "u2": [0]}
    path.write_text("u1 3 x\n")
    with pytest.raises(ValueError, match="ali.txt:1"):
        corpus.read_alignments(str(path))


def test_wav_at_16k_gives_the_frame_rule(tmp_path):
    wave = tone(0.5, 16000, 440, 0)
    write_wav(tmp_path / "x.wav", wave, 16000)
    statics, reason = corpus.read_wav_statics(str(tmp_path / "x.wav"), 16000)
    assert reason is None and statics.shape == (1 + (8000 - 400) // 160, 64)


@pytest.mark.parametrize("cache", CACHE)
def test_a_shard_without_usable_utterances_fails_instead_of_waiting(kaldi_data, tmp_path,
                                                                    cache):
    scp = tmp_path / "bad.scp"
    with open(kaldi_data.scp) as f:
        scp.write_text("".join(l for l in f if l.split()[0] in (MISSING, MISMATCHED)))
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="No usable"):
        info = data.build_speech_dataset(
            "kaldi", str(scp), alignments=kaldi_data.alignments,
            num_states=kaldi_data.num_states, seed=0, batch_size=4, training=True, cache=cache)
        next(iter(info.dataset))
