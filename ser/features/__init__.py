"""Arrays in, arrays out: the shared STFT and filterbanks (``stft``), handcrafted features and their
cache (``handcrafted``), the CNN's log-mel images (``logmel``), signal mathematics (``signal_math``)."""
