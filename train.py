#!/usr/bin/env python
"""Train, evaluate, save, share and batch-predict speech-emotion models: ``python train.py --help``."""

import sys

from ser.cli import main

if __name__ == "__main__":
    sys.exit(main())
