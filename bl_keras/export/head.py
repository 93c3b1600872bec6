"""What a classifier outputs: logits or probabilities, and the names of its classes."""

import keras

OUTPUT_KINDS = ("auto", "logits", "probabilities")


def classifier_of(model):
    """The functional classifier whose outputs `model` returns: a dynamic network's backbone
    (BlockDrop runs its backbone per image), else `model` itself."""
    from bl_keras.blockdrop import BlockDropNetwork

    return model.backbone if isinstance(model, BlockDropNetwork) else model


def outputs_logits(model, kind="auto"):
    """True if `model` outputs logits, False if it outputs softmax probabilities.

    `kind="auto"` reads the activation of the model's last layer (the `predictions` Dense of
    every model here: `classifier_activation="softmax"` or None); anything else there is
    ambiguous, so it raises and the caller must say which it is.
    """
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"kind must be one of {OUTPUT_KINDS}, got {kind!r}")
    if kind != "auto":
        return kind == "logits"
    model = classifier_of(model)
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise ValueError("expected a classifier with one [batch, classes] output "
                         "(build it with include_top=True)")
    last = model.layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return False
    activation = last.get_config().get("activation")
    if activation == "softmax":
        return False
    if activation == "linear":  # Keras' name for activation=None
        return True
    raise ValueError(f"cannot tell whether layer {last.name!r} (activation {activation!r}) "
                     "gives logits or probabilities; pass kind='logits' or 'probabilities'")


def class_names(num_classes, labels_file=None):
    """One name per class: the lines of `labels_file`, or the class ids as strings."""
    if labels_file is None:
        return [str(i) for i in range(num_classes)]
    with open(labels_file, encoding="utf-8") as f:
        names = [line.strip() for line in f.read().splitlines()]
    while names and not names[-1]:  # a trailing newline is not a class
        names.pop()
    if len(names) != num_classes:
        raise ValueError(f"{labels_file} has {len(names)} labels, the model {num_classes} classes")
    return names
