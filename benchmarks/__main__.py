"""`python -m benchmarks [--smoke] [--no-mlflow] [--only sklearn,torch:mlp] [--out DIR]`."""

import sys

from benchmarks.harness import main

sys.exit(main())
