"""SGD with momentum whose update is one fused TensorFlow kernel per weight.

Keras' `SGD.update_step` writes the momentum update as separate elementwise ops (multiply,
multiply, subtract, assign, and again for Nesterov's look-ahead): about eight passes over every
weight, its momentum and its gradient, each step. TensorFlow's `ResourceApplyKerasMomentum`
kernel computes exactly Keras' rule in one multi-threaded pass:

    accum = momentum * accum - lr * grad
    var  += momentum * accum - lr * grad      (Nesterov; else var += accum)

On a 2-core CPU this takes ResNet-50's update phase (with the weight decay) from about 74 to
about 57 ms of a bf16 training step at batch 16 (`python -m bl_keras.benchmark --mode train
--breakdown`). The variables, their names and the checkpoints are Keras' `SGD`'s.
"""

import keras

register = keras.saving.register_keras_serializable(package="bl_keras")


@register
class FusedSGD(keras.optimizers.SGD):
    """`keras.optimizers.SGD` with the momentum update in one kernel (TensorFlow backend, dense
    gradients); other cases run Keras' own update. Its variables are named as Keras' SGD's."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, name="sgd", **kwargs):
        super().__init__(learning_rate, momentum=momentum, nesterov=nesterov, name=name,
                         **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        import tensorflow as tf

        if (self.momentum == 0 or keras.backend.backend() != "tensorflow"
                or isinstance(gradient, tf.IndexedSlices)):
            return super().update_step(gradient, variable, learning_rate)
        accum = self.momentums[self._get_variable_index(variable)]
        variable = variable.value if isinstance(variable, keras.Variable) else variable
        accum = accum.value if isinstance(accum, keras.Variable) else accum
        dtype = variable.dtype
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=variable.handle, accum=accum.handle, lr=tf.cast(learning_rate, dtype),
            grad=tf.cast(gradient, dtype), momentum=tf.cast(self.momentum, dtype),
            use_locking=False, use_nesterov=self.nesterov)
