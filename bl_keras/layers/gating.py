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
  scattered back into the shortcut's output); a block no image keeps costs nothing beyond its
  shortcut. Blocks in inference use moving statistics, so both give the same numbers.
"""

import contextlib
import threading

_state = threading.local()


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
    `x` given their shortcut output; `shortcut_fn(x)` the shortcut alone. A Python number as `gate` chooses for the whole
    batch when the function is traced."""
    shortcut = shortcut_fn(inputs)
    if isinstance(gate, (bool, int, float)):  # a static choice (cost accounting, export)
        return block_fn(inputs, shortcut) if gate else shortcut
    import tensorflow as tf  # the gathered execution is TensorFlow-only

    if dynamic is None:
        dynamic = not training
    if not dynamic:
        gate = tf.reshape(tf.cast(gate, shortcut.dtype), [-1, 1, 1, 1])
        return gate * block_fn(inputs, shortcut) + (1 - gate) * shortcut
    kept = tf.where(tf.reshape(gate, [-1]) > 0.5)  # [n, 1] indices of the images it runs on

    def run_kept():
        outputs = block_fn(tf.gather_nd(inputs, kept), tf.gather_nd(shortcut, kept))
        return tf.tensor_scatter_nd_update(shortcut, kept, tf.cast(outputs, shortcut.dtype))

    # No image keeps it: skip the block (TensorFlow's CPU convolutions also mishandle an empty
    # batch).
    return tf.cond(tf.shape(kept)[0] > 0, run_kept, lambda: shortcut)
