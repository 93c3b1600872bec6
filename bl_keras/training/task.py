"""What the trainer needs from a task: a model, datasets, and a loss.

A task is written for one replica (Model Garden style); the `Trainer` runs it under any strategy.
`ClassificationTask` serves image classification and frame classification (speech) alike:
subclasses provide `build_model`, `train_dataset`, `eval_dataset` and `num_train_examples`, and
describe themselves for the run's config.json (`model_config`, `data_config`). A task checks its
data when it is made, before the trainer builds anything: the splits it is asked for must exist.
"""

import tensorflow as tf


class ClassificationTask:
    """Softmax cross-entropy over `num_classes`, top-1/top-5 accuracy."""

    name = "classification"
    num_classes = None
    num_train_examples = None  # None when the run does not read the training split
    has_eval_data = True
    # What one example and one dropped input are, in metric names: images_per_sec, skipped_images.
    example_unit = "images"
    skipped_unit = "images"
    # The validation metric that picks best.keras (higher is better).
    primary_metric = "top1"

    def __init__(self):
        self._skip_counters = []

    def build_model(self, config):
        """A Keras model producing logits; called inside the strategy scope."""
        raise NotImplementedError

    def model_config(self):
        """The options the model's weights depend on (name, builder options, classes): a run
        into a directory trained with others is refused."""
        return {"classes": self.num_classes}

    def data_config(self):
        """The data options of the run (recorded; they may change when a run resumes)."""
        return {}

    def attach(self, step):
        """Called by the trainer with its step counter (a variable): tasks whose loss draws
        random choices per step (MutualNet's sub-networks) seed them with it, so a resumed run
        draws what the uninterrupted one would have."""

    def train_dataset(self, input_context, per_replica_batch, skip_examples):
        """Infinite stream of (inputs, labels) batches for one input pipeline, starting after
        `skip_examples` examples of that pipeline's stream (for exact resumption)."""
        raise NotImplementedError

    def eval_dataset(self, input_context, per_replica_batch):
        """One pass of (inputs, labels) batches for one input pipeline, or None."""
        return None

    def track_skips(self, counter):
        """Register a pipeline's counter of dropped (undecodable) inputs."""
        self._skip_counters.append(counter)

    def skipped_inputs(self):
        """Inputs dropped so far as undecodable, over every pipeline built (for the logs)."""
        return sum(int(c.numpy()) for c in self._skip_counters)

    def logits(self, model, inputs, training):
        """The model's class scores for `inputs`, [batch, classes]."""
        return model(inputs, training=training)

    def compute_loss(self, model, batch, training, label_smoothing=0.0):
        """(per-example loss, logits, labels) for one replica's batch."""
        inputs, labels = batch
        logits = tf.cast(self.logits(model, inputs, training), tf.float32)
        labels = tf.cast(labels, tf.int32)
        if label_smoothing:
            onehot = tf.one_hot(labels, tf.shape(logits)[-1])
            loss = tf.keras.losses.categorical_crossentropy(
                onehot, logits, from_logits=True, label_smoothing=label_smoothing)
        else:
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        return loss, logits, labels

    @staticmethod
    def metric_sums(per_example_loss, logits, labels):
        """Sums over the batch; the trainer adds them across replicas and steps."""
        k = tf.minimum(5, tf.shape(logits)[-1])
        return {
            "loss": tf.reduce_sum(per_example_loss),
            "top1": tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, logits, 1), tf.float32)),
            "top5": tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, logits, k), tf.float32)),
            "count": tf.cast(tf.shape(labels)[0], tf.float32),
        }
