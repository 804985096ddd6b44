"""Training and evaluation: protocols and folds (``protocols``), what a run records (``metadata``),
training runs per model kind (``mlp``, ``cnn``, ``ensemble``), cross-corpus protocols (``crosscorpus``)."""
