"""What the app and the CLI serve: ``service`` (plain values in, JSON out), ``timeline`` (emotion over
time, self-adaptation, live stream), ``enrolment`` (a visitor's voice profile, built clip by clip),
``batch`` (many files, a row each), ``presentation`` (Markdown and tables)."""
