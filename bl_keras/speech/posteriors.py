"""Per-frame log-posteriors of an acoustic model, written as a Kaldi ark for decoding.

    python -m bl_keras.speech.posteriors --model model.keras --feats data/test/feats.scp \\
        --output post.ark --priors_from_alignments pdf_ali.txt
    python -m bl_keras.speech.posteriors --model model.keras --audio wavs/ --sample_rate 8000 \\
        --output post.ark

Each utterance runs through the model whole: its normalised features (log-mel, deltas, CMVN,
as in training) are padded with 24 copies of the first and last frame, so T frames in give T
predictions out, frame t's prediction from the 49-frame window centred on it, exactly as in
training. Long utterances run in chunks of `--chunk_frames` outputs (each chunk reads 48 extra
frames) to bound memory; the result does not depend on the chunk size.

Output: `post.ark` (+ `post.scp` beside it), utt -> (T, num_states) float32 log-softmax rows.
With priors the rows are pseudo log-likelihoods log p(s | x) - prior_scale * log p(s), what a
Kaldi decoder expects from a hybrid model (nnet1's `--class-frame-counts`): priors are the state
counts of the training alignments, normalised, floored at `--prior_floor` (1e-8, so a state never
seen keeps a finite log prior of -18.4).
"""

import argparse
import os
import sys

import numpy as np
import tensorflow as tf

from bl_keras.command_line import HelpFormatter
from bl_keras.saving import load_model
from bl_keras.speech import corpus, features

DEFAULT_CHUNK_FRAMES = 1000
DEFAULT_PRIOR_FLOOR = 1e-8


def model_function(model):
    """A tf.function running `model` in inference mode on (1, 64, frames, 3) inputs."""

    @tf.function(input_signature=[tf.TensorSpec([1, features.NUM_MEL_BINS, None, 3],
                                                tf.float32)])
    def run(inputs):
        return tf.cast(model(inputs, training=False), tf.float32)

    return run


@tf.function(input_signature=[tf.TensorSpec([None, features.NUM_MEL_BINS], tf.float32)])
def _normalised(statics):
    return features.cmvn(features.deltas(statics))


def log_posteriors(run, feats, context=features.CONTEXT, chunk_frames=DEFAULT_CHUNK_FRAMES):
    """(T, num_states) float32 log-softmax outputs for normalised features (T, 64, 3).

    `run` maps (1, 64, n + context - 1, 3) inputs to (1, n, num_states) logits (see
    `model_function`)."""
    padded = features.pad_context(feats, context)  # (T + context - 1, 64, 3)
    frames = int(tf.shape(feats)[0])
    outputs = []
    for start in range(0, frames, chunk_frames):
        stop = min(start + chunk_frames, frames)
        window = tf.transpose(padded[start:stop + context - 1], [1, 0, 2])[None]
        outputs.append(tf.nn.log_softmax(run(window)[0], axis=-1))
    return tf.concat(outputs, axis=0).numpy()


def state_counts(alignments, num_states):
    """Frames per tied state over an alignment text file (`utt_id s_1 ... s_T` lines)."""
    counts = np.zeros(num_states, np.float64)
    for key, states in corpus.read_alignments(alignments).items():
        if len(states) and (states.min() < 0 or states.max() >= num_states):
            raise ValueError(f"{key}: state ids outside [0, {num_states})")
        counts += np.bincount(states, minlength=num_states)
    return counts


def read_priors(path, num_states):
    """Counts or probabilities per state: a .npy array, or text numbers (Kaldi's
    class-frame-counts vector `[ c_0 c_1 ... ]` included)."""
    if path.endswith(".npy"):
        values = np.load(path).astype(np.float64).reshape(-1)
    else:
        with open(path) as f:
            values = np.array(f.read().replace("[", " ").replace("]", " ").split(), np.float64)
    if len(values) != num_states:
        raise ValueError(f"{path}: {len(values)} priors for a model with {num_states} states")
    return values


def log_priors(counts, floor=DEFAULT_PRIOR_FLOOR):
    """log(max(counts / sum(counts), floor))."""
    counts = np.asarray(counts, np.float64)
    if counts.min() < 0 or counts.sum() <= 0:
        raise ValueError("prior counts must be non-negative with a positive sum")
    return np.log(np.maximum(counts / counts.sum(), floor))


def iter_features(feats_scp=None, audio=None, sample_rate=16000):
    """(utt_id, statics (T, 64) or None, reason) for a feats.scp or a WAV directory/list."""
    if feats_scp is not None:
        for key, rxspecifier in corpus.read_scp(feats_scp):
            yield (key,) + corpus.read_kaldi_statics(key, rxspecifier)
    else:
        wav_log_mel = corpus.wav_log_mel_function(sample_rate)
        for key, path in corpus.list_wavs(audio):
            yield (key,) + corpus.read_wav_statics(path, sample_rate, wav_log_mel)


def write_posteriors(model, utterances, output, log_prior=None, prior_scale=1.0,
                     context=features.CONTEXT, chunk_frames=DEFAULT_CHUNK_FRAMES):
    """Writes `output` (.ark) and its .scp; returns (utterances written, utterances skipped).

    `utterances` yields (utt_id, statics or None, reason) as `iter_features` does; unusable
    ones are reported on stderr and left out."""
    import kaldiio

    run = model_function(model)
    scp = os.path.splitext(output)[0] + ".scp"
    written = skipped = 0
    with kaldiio.WriteHelper(f"ark,scp:{output},{scp}") as writer:
        for key, statics, reason in utterances:
            if statics is not None and len(statics) == 0:
                statics, reason = None, "no frames"
            if statics is None:
                print(f"bl_keras.speech: skipping utterance {key}: {reason}", file=sys.stderr)
                skipped += 1
                continue
            out = log_posteriors(run, _normalised(statics), context, chunk_frames)
            if log_prior is not None:
                out = out - prior_scale * log_prior[None, :]
            writer(key, out.astype(np.float32))
            written += 1
    return written, skipped


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m bl_keras.speech.posteriors",
        description="Frame log-posteriors (or pseudo log-likelihoods) as a Kaldi ark.",
        formatter_class=HelpFormatter)
    parser.add_argument("--model", required=True, help=".keras acoustic model")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--feats", help="feats.scp of (frames, 64) log-mel features")
    source.add_argument("--audio", help="directory or list file of .wav files")
    parser.add_argument("--output", required=True, help="ark to write; the .scp goes beside it")
    priors = parser.add_mutually_exclusive_group()
    priors.add_argument("--priors", help=".npy or text vector of state counts/probabilities")
    priors.add_argument("--priors_from_alignments",
                        help="alignment text file (`utt_id s_1 ... s_T`) to count states in")
    parser.add_argument("--prior_floor", type=float, default=DEFAULT_PRIOR_FLOOR,
                        help="smallest prior probability (unseen states)")
    parser.add_argument("--prior_scale", type=float, default=1.0,
                        help="output = log-posterior - prior_scale * log prior")
    parser.add_argument("--sample_rate", type=int, default=16000,
                        help="--audio only: the rate the model was trained at")
    parser.add_argument("--chunk_frames", type=int, default=DEFAULT_CHUNK_FRAMES,
                        help="output frames per model call (bounds memory)")
    args = parser.parse_args(argv)

    
    import bl_keras  # noqa: F401  (registers the bl_keras layers for loading)

    model = load_model(args.model)
    num_states = int(model.output_shape[-1])
    log_prior = None
    if args.priors:
        log_prior = log_priors(read_priors(args.priors, num_states), args.prior_floor)
    elif args.priors_from_alignments:
        log_prior = log_priors(state_counts(args.priors_from_alignments, num_states),
                               args.prior_floor)
    utterances = iter_features(args.feats, args.audio, args.sample_rate)
    written, skipped = write_posteriors(model, utterances, args.output, log_prior,
                                        args.prior_scale, chunk_frames=args.chunk_frames)
    kind = "pseudo log-likelihoods" if log_prior is not None else "log-posteriors"
    print(f"wrote {kind} of {written} utterances to {args.output} ({skipped} skipped)")
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
