"""Per-image block gates: run a residual block for some images of a batch and pass the others
through its shortcut (BlockDrop's dynamic inference paths).

    with gating.running_gates({block.path: policy[:, k] for k, block in enumerate(blocks)}):
        logits = model(images, training=False)

Within the scope, a residual block (`BasicBlock`, `Bottleneck`) whose path has a gate, a
[batch] tensor of 0/1 values, outputs for each image either its usual output (gate 1) or its
shortcut's (gate 0: the input, or the downsampled / projected input where the block changes
shape). Functional models do not forward extra call arguments, so the gates reach the blocks
through this thread-local scope, as widths do (`bl_keras.layers.width`).

Two executions, one result:
* **masked** (training): the block runs on the whole batch and the gate mixes the two outputs,
  gate * block + (1 - gate) * shortcut; BatchNorm sees the whole batch, as in the authors' code.
* **dynamic** (inference): the block runs only on the images whose gate is 1 (gathered, then
  stitched together with the other images' shortcut output); a block no image keeps costs
  nothing beyond its shortcut. Blocks in inference use moving statistics, so both give the
  same numbers.

A gate may also name an `Alternative` (SpotTune): gate 1 runs the block, gate 0 another layer of
the same shapes in its place (the block's frozen copy), each image through exactly one of them
in the dynamic execution.
"""

import contextlib
import dataclasses
import threading

_state = threading.local()


@dataclasses.dataclass(frozen=True)
class Alternative:
    """The gate of a block with a substitute: `choice` ([batch] 0/1, or a Python number) runs
    the block where 1 and `layer` (called in inference mode, outside every gate scope) where
    0."""
    choice: object
    layer: object


@contextlib.contextmanager
def running_gates(gates, dynamic=None):
    """Within this context, the blocks named in `gates` ({layer path: [batch] 0/1 tensor}) run
    per image; `dynamic` forces (True) or forbids (False) the gathered execution, default: in
    inference only."""
    previous = getattr(_state, "gates", None)
    _state.gates = (dict(gates), dynamic)
    try:
        yield
    finally:
        _state.gates = previous


def gate_of(layer):
    """(gate, dynamic) for `layer` in the innermost scope, or (None, None)."""
    current = getattr(_state, "gates", None)
    if current is None:
        return None, None
    gates, dynamic = current
    return gates.get(layer.path), dynamic


def gated_block(inputs, gate, shortcut_fn, block_fn, training, dynamic=None):
    """The output of a gated residual block: `block_fn(x, shortcut)` is its output for images
    `x` given their shortcut output; `shortcut_fn(x)` the shortcut alone. A Python number as
    `gate` chooses for the whole batch when the function is traced."""
    if isinstance(gate, Alternative):
        return _chosen_block(inputs, gate, lambda x: block_fn(x, shortcut_fn(x)), training,
                             dynamic)
    shortcut = shortcut_fn(inputs)
    if isinstance(gate, (bool, int, float)):  # a static choice (cost accounting, export)
        return block_fn(inputs, shortcut) if gate else shortcut
    import tensorflow as tf  # the gathered execution is TensorFlow-only

    if dynamic is None:
        dynamic = not training
    if not dynamic:
        gate = tf.reshape(tf.cast(gate, shortcut.dtype), [-1, 1, 1, 1])
        return gate * block_fn(inputs, shortcut) + (1 - gate) * shortcut
    keep = tf.reshape(gate, [-1]) > 0.5
    kept = tf.cast(tf.where(keep)[:, 0], tf.int32)  # the images it runs on
    count, batch = tf.shape(kept)[0], tf.shape(inputs)[0]

    def run_kept():
        gathered = tf.gather(inputs, kept)
        # An identity shortcut's rows are the inputs' rows: gathered once.
        outputs = block_fn(gathered,
                           gathered if shortcut is inputs else tf.gather(shortcut, kept))
        # Stitching the kept rows with the dropped rows' shortcut runs on all cores; a scatter
        # into a copy of the shortcut writes row by row (4% of the ResNet-56 demo's step).
        dropped = tf.cast(tf.where(tf.logical_not(keep))[:, 0], tf.int32)
        return tf.dynamic_stitch([dropped, kept], [tf.gather(shortcut, dropped),
                                                   tf.cast(outputs, shortcut.dtype)])

    def run_all():  # every image keeps it: no gather, no stitch
        return tf.cast(block_fn(inputs, shortcut), shortcut.dtype)

    # No image keeps it: skip the block (TensorFlow's CPU convolutions also mishandle an empty
    # batch).
    return tf.cond(count == 0, lambda: shortcut,
                   lambda: tf.cond(count == batch, run_all, run_kept))


def _run_alternative(layer, inputs):
    previous = getattr(_state, "gates", None)
    _state.gates = None  # the substitute is a plain block (it may share the block's path)
    try:
        return layer(inputs, training=False)
    finally:
        _state.gates = previous


def _chosen_block(inputs, gate, block_fn, training, dynamic):
    """Per image, the block's output (choice 1) or its alternative's (choice 0)."""
    choice = gate.choice
    if isinstance(choice, (bool, int, float)):
        return block_fn(inputs) if choice else _run_alternative(gate.layer, inputs)
    import tensorflow as tf

    if dynamic is None:
        dynamic = not training
    if not dynamic:
        block = block_fn(inputs)
        other = tf.cast(_run_alternative(gate.layer, inputs), block.dtype)
        choice = tf.reshape(tf.cast(choice, block.dtype), [-1, 1, 1, 1])
        return choice * block + (1 - choice) * other
    chosen = tf.reshape(choice, [-1]) > 0.5
    own = tf.cast(tf.where(chosen)[:, 0], tf.int32)  # the images that run the block
    other = tf.cast(tf.where(tf.logical_not(chosen))[:, 0], tf.int32)

    def alternative_only():
        return tf.cast(_run_alternative(gate.layer, inputs), inputs.dtype)

    def both():
        block = block_fn(tf.gather(inputs, own))
        substitute = tf.cast(_run_alternative(gate.layer, tf.gather(inputs, other)),
                             block.dtype)
        return tf.dynamic_stitch([own, other], [block, substitute])

    # Each image runs one of the two; a side no image takes is not run (an empty batch also
    # trips TensorFlow's CPU convolutions).
    return tf.cond(tf.shape(own)[0] == 0, alternative_only,
                   lambda: tf.cond(tf.shape(other)[0] == 0, lambda: block_fn(inputs), both))
