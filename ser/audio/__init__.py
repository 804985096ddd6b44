"""Audio in: decoding and validation (``io``), voice activity (``vad``), degradations real audio
suffers (``degrade``), training-side augmentation (``augment``) and corpora (``corpora``)."""
