"""SpotTune's evaluation figures: top-1, fine-tuned blocks per image, the share of images that
fine-tune each block, and MACs per image.

Every image runs one copy of each block (the frozen or the fine-tuned one: the same cost), so
MACs per image = one pass of the backbone + the agent, whatever the policy (multiply-
accumulates, the package's unit; the papers' FLOPs are 2 x MACs).
"""

import numpy as np

from bl_keras import profiling


def inference_macs(network, image_shape):
    """MACs per image of a `SpotTuneNetwork` (backbone pass + agent) or of a plain classifier."""
    from bl_keras.spottune.network import SpotTuneNetwork

    if isinstance(network, SpotTuneNetwork):
        return (profiling.count_macs(network.tuned, image_shape)
                + profiling.count_macs(network.agent, image_shape))
    return profiling.count_macs(network, image_shape)


def evaluate_model(model, dataset, image_shape=None):
    """{"top1", "images"} of a classifier over `dataset` ((images, labels) batches); for a
    `SpotTuneNetwork` also "fine_tuned_mean"/"_std" (blocks per image), "fine_tune_share" ([K]:
    images running each block's fine-tuned copy); "macs" if `image_shape` is given."""
    import tensorflow as tf

    from bl_keras.spottune.network import SpotTuneNetwork

    spottune = isinstance(model, SpotTuneNetwork)
    images_spec = dataset.element_spec[0]
    batch_spec = tf.TensorSpec([None, *images_spec.shape[1:]], images_spec.dtype)

    @tf.function(input_signature=[batch_spec])  # one trace: the last batch may be smaller
    def step(images):
        if spottune:
            policy = model.policy(images)
            logits = model.run(images, policy, training=False)
        else:
            logits = model(images, training=False)
            policy = tf.zeros([tf.shape(images)[0], 0])
        return tf.argmax(logits, axis=-1, output_type=tf.int32), policy

    hits, policies = [], []
    for images, labels in dataset:
        predicted, policy = step(images)
        hits.append(predicted.numpy() == labels.numpy())
        policies.append(policy.numpy())
    hits, policies = np.concatenate(hits), np.concatenate(policies)
    summary = {"top1": float(hits.mean()), "images": int(hits.size)}
    if spottune:
        blocks = policies.sum(axis=1)
        summary.update(fine_tuned_mean=float(blocks.mean()), fine_tuned_std=float(blocks.std()),
                       num_blocks=int(policies.shape[1]),
                       fine_tune_share=[float(v) for v in policies.mean(axis=0)])
    if image_shape is not None:
        summary["macs"] = int(inference_macs(model, tuple(image_shape)))
    return summary
