"""Step 2: read the data step 1 logged (downloaded by `autolog run`) and fit a model."""

import argparse
import csv
import os

import autolog

parser = argparse.ArgumentParser()
parser.add_argument("--data")
parser.add_argument("--C", type=float)
args = parser.parse_args()

with open(os.path.join(args.data, "points.csv")) as f:
    rows = list(csv.DictReader(f))
X = [[float(r["x1"]), float(r["x2"])] for r in rows]
y = [int(r["label"]) for r in rows]

autolog.autolog()  # the fit logs its params, metrics and model into this step's run
from sklearn.linear_model import LogisticRegression  # noqa: E402

LogisticRegression(C=args.C).fit(X, y)
autolog.log_metric("rows", len(rows))
