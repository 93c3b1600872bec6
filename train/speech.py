"""Training and evaluation of the speech acoustic models (paper Appendix B.1).

    python -m train.speech --flagfile=configs/speech/bl_resnet22_a2_b3.flags \\
        --train_data=data/train/feats.scp --train_alignments=exp/ali/train.pdf.txt \\
        --val_data=data/dev/feats.scp --val_alignments=exp/ali/dev.pdf.txt --num_states=9000
    python -m train.speech --flagfile=configs/speech/demo.flags      # generated data, 2 CPUs

Each example is the 49-frame context window of one frame; the label is that frame's tied
context-dependent HMM state. Frame accuracy is reported as top1. Recipe defaults: 16 epochs,
batch 512, Nesterov SGD 0.9, lr 0.03 halved every epoch from epoch 10, gradient clipping 10,
weight decay 1e-6 on every parameter (PyTorch's SGD weight_decay, as the paper trained).

Without --val_data (or with --noeval) it trains without validation and says so; the data of
the run (files, alignments, label ranges) is checked from the labels before anything is built.
Metrics count frames (frames_per_sec) and skipped utterances (skipped_utterances).
"""

import os
import sys

from absl import flags

from train import flags as train_flags
from bl_keras.training.task import ClassificationTask

FLAGS = flags.FLAGS

train_flags.define_trainer_flags(dict(
    batch_size=512, epochs=16, lr=0.03, lr_batch_reference=512, lr_schedule="halving",
    lr_halving_start_epoch=10, weight_decay=1e-6, weight_decay_all=True, clip_global_norm=10.0,
))
flags.DEFINE_string("model", None, "speech.resnet22, speech.bl_resnet22 or "
                    "speech.bl_pyr_resnet22. Required.")
flags.DEFINE_integer("alpha", None, "bL width ratio (default 4).")
flags.DEFINE_integer("beta", None, "bL depth ratio (default 1).")
flags.DEFINE_enum("merge", None, ["add", "concat"], "bL-ResNet-22 branch merge.")
flags.DEFINE_list("widths", None, "Channels of the 4 stages (default 64,128,256,512).")
flags.DEFINE_integer("head_channels", None, "Channels of the (4x1) projection (default: the "
                     "last stage's).")
flags.DEFINE_integer("num_states", None, "Tied states (kaldi: required; audio: largest label "
                     "+ 1 by default).")
flags.DEFINE_enum("data_source", "kaldi", ["kaldi", "audio", "demo"],
                  "kaldi: feats.scp + alignment text files; audio: WAV files with per-frame "
                  "<utt>.labels beside them; demo: generate the synthetic demo corpus into "
                  "--demo_dir.")
flags.DEFINE_string("train_data", None, "feats.scp (kaldi) or WAV directory/list (audio).")
flags.DEFINE_string("val_data", None, "Validation feats.scp or WAV directory/list.")
flags.DEFINE_string("train_alignments", None, "kaldi: `utt s1 s2 ...` per line, training.")
flags.DEFINE_string("val_alignments", None, "kaldi: alignments of the validation set.")
flags.DEFINE_integer("sample_rate", 16000, "audio: sample rate features are computed at "
                     "(8000 for telephone speech).")
flags.DEFINE_boolean("cache_data", False, "Keep the features in memory (small corpora).")
flags.DEFINE_string("demo_dir", "speech_demo_data", "demo: where the corpus is generated.")


class SpeechTask(ClassificationTask):
    """Frame classification: windows of 49 frames -> the centre frame's tied state."""

    name = "speech"
    example_unit = "frames"
    skipped_unit = "utterances"

    def __init__(self, model, model_options, source, train_data, val_data=None,
                 train_alignments=None, val_alignments=None, num_states=None,
                 sample_rate=16000, cache=False, seed=0, splits=("train", "val")):
        """`splits`: those the run reads, each checked here from its labels (files, label
        ranges; a problem is a `ConfigError` naming the flag); "val" without `val_data` trains
        without validation. The states are `num_states` or the training labels' largest + 1."""
        from bl_keras.speech.data import build_speech_dataset, speech_data_stats

        super().__init__()
        self.model_name = model
        self.model_options = dict(model_options)
        self.seed = seed
        self._build = build_speech_dataset
        self._stats = speech_data_stats
        self._data = dict(source=source, num_states=num_states, sample_rate=sample_rate,
                          cache=cache)
        self._train = dict(path=train_data, alignments=train_alignments)
        self._val = dict(path=val_data, alignments=val_alignments) if val_data else None
        self.has_eval_data = self._val is not None and "val" in splits
        self.num_classes = num_states
        if "train" in splits or num_states is None:
            examples, self.num_classes = self._check("train_data", self._train)
            if "train" in splits:
                self.num_train_examples = examples
        self._data["num_states"] = self.num_classes
        if self.has_eval_data:
            self._check("val_data", self._val)

    def _check(self, flag, data):
        """(frames, states) of one data set, from its labels alone (no audio is read)."""
        try:
            frames, states, _ = self._stats(
                self._data["source"], data["path"], alignments=data["alignments"],
                num_states=self._data["num_states"], sample_rate=self._data["sample_rate"])
        except (FileNotFoundError, ValueError) as err:
            raise train_flags.FlagError(flag, str(err).splitlines()[0]) from None
        return frames, states

    def model_config(self):
        options = train_flags.with_builder_defaults(self.model_name, self.model_options)
        return {"model": self.model_name, **options, "num_states": self.num_classes}

    def data_config(self):
        return {**self._data, "train_data": self._train, "val_data": self._val}

    def build_model(self, config):
        from bl_keras import models

        options = dict(self.model_options, num_states=self.num_classes)
        if config.sync_bn:
            options["norm"] = {"synchronized": True}
        return models.get(self.model_name, **options)

    def logits(self, model, inputs, training):
        # (batch, 1, states) for a 49-frame window: the centre frame's prediction.
        return model(inputs, training=training)[:, 0, :]

    def train_dataset(self, input_context, per_replica_batch, skip_examples):
        info = self._build(training=True, batch_size=per_replica_batch, seed=self.seed,
                           input_context=input_context, skip_examples=skip_examples,
                           **self._train, **self._data)
        self.track_skips(info.skipped)
        return info.dataset

    def eval_dataset(self, input_context, per_replica_batch):
        info = self._build(training=False, batch_size=per_replica_batch, seed=self.seed,
                           input_context=input_context, **self._val, **self._data)
        self.track_skips(info.skipped)
        return info.dataset


def model_options_from_flags():
    from bl_keras import models

    if not FLAGS.model:
        raise train_flags.FlagError("model", "required")
    if not FLAGS.model.startswith("speech."):
        raise train_flags.FlagError("model", f"{FLAGS.model} is not a speech model; valid: "
                                             f"{', '.join(models.list_models('speech.'))}")
    try:
        entry = models.get_entry(FLAGS.model)
    except ValueError as err:
        raise train_flags.FlagError("model", str(err)) from None
    options = train_flags.builder_options(entry.name, ("alpha", "beta", "merge", "widths",
                                                       "head_channels"))
    if "widths" in options:
        try:
            widths = [int(w) for w in options["widths"]]
        except ValueError:
            raise train_flags.FlagError("widths", f"expected 4 integers, got {FLAGS.widths}")
        if len(widths) != 4 or min(widths) < 1:
            raise train_flags.FlagError("widths", f"expected 4 positive integers, got {widths}")
        options["widths"] = widths
    return options


def task_from_flags(config):
    """The task of the flags, its model options and data checked (the splits of `config`)."""
    options = model_options_from_flags()
    train, val = FLAGS.train_data, FLAGS.val_data
    if FLAGS.data_source == "demo":
        from bl_keras.speech.demo import make_speech_demo

        root = make_speech_demo(FLAGS.demo_dir, sample_rate=FLAGS.sample_rate, seed=FLAGS.seed)
        train, val = os.path.join(root, "train"), os.path.join(root, "val")
        source = "audio"
    else:
        source = FLAGS.data_source
        check_data_flags(config)
    if FLAGS.num_states is not None and FLAGS.num_states < 2:
        raise train_flags.FlagError("num_states", f"must be >= 2, got {FLAGS.num_states}")
    return SpeechTask(FLAGS.model, options, source, train, val, FLAGS.train_alignments,
                      FLAGS.val_alignments, FLAGS.num_states, FLAGS.sample_rate,
                      FLAGS.cache_data, FLAGS.seed, splits=config.splits)


def check_data_flags(config):
    """The data flags a run of `config` needs are given, and their paths exist."""
    kaldi = FLAGS.data_source == "kaldi"
    needed = []
    if "train" in config.splits:
        needed += ["train_data"] + (["train_alignments"] if kaldi else [])
    if config.mode == "eval":
        needed += ["val_data"] + (["val_alignments"] if kaldi else [])
        if FLAGS.num_states is None:
            needed.append("train_data")  # the states are the training labels'
    if config.eval and FLAGS.val_data and kaldi:
        needed.append("val_alignments")
    for flag in ("train_data", "val_data", "train_alignments", "val_alignments"):
        path = getattr(FLAGS, flag)
        if path and not os.path.exists(path):
            raise train_flags.FlagError(flag, f"no such file or directory: {path}")
    for flag in needed:
        if not getattr(FLAGS, flag):
            raise train_flags.FlagError(flag, f"required for --mode={config.mode} with "
                                              f"{FLAGS.data_source} data")
    if kaldi and FLAGS.num_states is None:
        raise train_flags.FlagError("num_states", "required with kaldi data")


if __name__ == "__main__":
    sys.exit(train_flags.run_task(task_from_flags))
