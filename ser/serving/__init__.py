"""What the app and the CLI serve: ``service`` (plain values in, JSON out), ``timeline`` (emotion over
time, live stream), ``batch`` (many files, a row each), ``presentation`` (Markdown and tables)."""
