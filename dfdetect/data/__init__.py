"""Data layer: dataset adapters, video frames, face crops, stores, tf.data pipelines."""
