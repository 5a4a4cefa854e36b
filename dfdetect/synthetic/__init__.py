"""The embedded benchmark maker: real / fake face stores and pose datasets that dfdetect
makes itself, so every experiment runs without a download.

It reads faces through :mod:`dfdetect.data` (photos, videos, landmarks, the store
writer); ``dfdetect.data`` never imports it, so a reader of ``data/`` sees only how
datasets are read. ``dfdetect data build`` calls
:func:`dfdetect.synthetic.benchmark.build_benchmark`.
"""
