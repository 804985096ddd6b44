"""Timing scripts and studies; run each from the project root as ``python -m bench.<name>``.

Studies (``robustness``, ``robustness_cnn``, ``crosscorpus``, ``calibrate_bundled``) fit through
the library (:class:`ser.training.mlp.MLPTrainer`, :class:`ser.training.cnn.CNNTrainer`) and write
``reports/*.json``; the others print measured figures.
"""

import os

# One BLAS thread per process, set before anything imports numpy: on 2 shared cores threads only
# fight (an MLP fit ran 7x slower), and joblib's worker processes inherit it.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
