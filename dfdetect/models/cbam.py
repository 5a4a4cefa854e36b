"""Convolutional Block Attention Module (Woo et al., ECCV 2018) as a Keras layer.

P3 (SPEC.md) applies CBAM to each frame's Xception feature map F (H x W x C)::

    Mc = sigmoid(MLP(AvgPool(F)) + MLP(MaxPool(F)))     shared MLP C -> C/r -> C
    F'  = Mc * F
    Ms = sigmoid(Conv_kxk([mean_c(F'); max_c(F')]))
    F'' = Ms * F'
    out = F + F''                                         (the paper's residual, eq. 4)

The MLP's hidden layer uses ReLU and both MLP layers carry biases, as in the authors'
reference code (the paper's eq. 5 writes only W0, W1). The spatial convolution has a
bias and no batch normalisation. Channels-last, rank-4 input; wrap it in
``TimeDistributed`` for clips.
"""

from __future__ import annotations

import keras
from keras import ops

from dfdetect.errors import ModelError


@keras.saving.register_keras_serializable(package="dfdetect")
class CBAM(keras.layers.Layer):
    """Channel then spatial attention with a residual connection, ``F + Ms(F') * F'``.

    Args:
        reduction: MLP reduction ratio r (hidden width ``max(1, C // r)``); paper 16.
        spatial_kernel: side of the spatial-attention convolution; paper 7.
        **kwargs: standard ``keras.layers.Layer`` arguments (``name``, ``dtype``...).

    Weights (created in ``build`` for C input channels, hidden width h):
        ``mlp_w0`` (C, h), ``mlp_b0`` (h,), ``mlp_w1`` (h, C), ``mlp_b1`` (C,),
        ``spatial_kernel`` (k, k, 2, 1) over [channel-mean, channel-max], ``spatial_bias`` (1,).
    """

    def __init__(self, reduction: int = 16, spatial_kernel: int = 7, **kwargs):
        super().__init__(**kwargs)
        if int(reduction) < 1:
            raise ModelError(f"CBAM reduction must be >= 1, got {reduction}")
        if int(spatial_kernel) < 1:
            raise ModelError(f"CBAM spatial_kernel must be >= 1, got {spatial_kernel}")
        self.reduction = int(reduction)
        self.spatial_kernel = int(spatial_kernel)

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ModelError(
                f"CBAM expects (batch, height, width, channels) with known channels, "
                f"got {tuple(input_shape)}; wrap it in TimeDistributed for clips"
            )
        channels = int(input_shape[-1])
        hidden = max(1, channels // self.reduction)
        self.mlp_w0 = self.add_weight(
            name="mlp_w0", shape=(channels, hidden), initializer="glorot_uniform")
        self.mlp_b0 = self.add_weight(name="mlp_b0", shape=(hidden,), initializer="zeros")
        self.mlp_w1 = self.add_weight(
            name="mlp_w1", shape=(hidden, channels), initializer="glorot_uniform")
        self.mlp_b1 = self.add_weight(name="mlp_b1", shape=(channels,), initializer="zeros")
        k = self.spatial_kernel
        self.spatial_kernel_weight = self.add_weight(
            name="spatial_kernel", shape=(k, k, 2, 1), initializer="glorot_uniform")
        self.spatial_bias = self.add_weight(
            name="spatial_bias", shape=(1,), initializer="zeros")

    def _mlp(self, v):
        hidden = ops.relu(ops.matmul(v, self.mlp_w0) + self.mlp_b0)
        return ops.matmul(hidden, self.mlp_w1) + self.mlp_b1

    def channel_attention(self, inputs):
        """Mc(F), shape (batch, 1, 1, C)."""
        avg = ops.mean(inputs, axis=(1, 2))
        mx = ops.max(inputs, axis=(1, 2))
        mc = ops.sigmoid(self._mlp(avg) + self._mlp(mx))
        return ops.expand_dims(ops.expand_dims(mc, 1), 1)

    def spatial_attention(self, refined):
        """Ms(F'), shape (batch, H, W, 1)."""
        pooled = ops.concatenate(
            [ops.mean(refined, axis=-1, keepdims=True),
             ops.max(refined, axis=-1, keepdims=True)],
            axis=-1,
        )
        logits = ops.conv(pooled, self.spatial_kernel_weight, strides=1, padding="same")
        return ops.sigmoid(logits + self.spatial_bias)

    def call(self, inputs):
        refined = self.channel_attention(inputs) * inputs
        return inputs + self.spatial_attention(refined) * refined

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"reduction": self.reduction, "spatial_kernel": self.spatial_kernel})
        return config
