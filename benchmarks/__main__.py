"""`python -m benchmarks [--smoke] [--no-mlflow] [--only sklearn,torch:mlp] [--out DIR]`;
`python -m benchmarks --server [--only sklearn] [--mlflow]`: the per-fit budgets through a
tracking server on this machine (benchmarks/server_fits.py)."""

import sys

if "--server" in sys.argv[1:]:
    from benchmarks.server_fits import main
else:
    from benchmarks.harness import main

sys.exit(main())
