"""Step 1: make a small labelled data set and log it as the run's `data` artifact."""

import argparse
import csv
import os
import random
import tempfile

import autolog

parser = argparse.ArgumentParser()
parser.add_argument("--rows", type=int)
parser.add_argument("--seed", type=int)
args = parser.parse_args()

rng = random.Random(args.seed)
folder = tempfile.mkdtemp()
with open(os.path.join(folder, "points.csv"), "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["x1", "x2", "label"])
    for i in range(args.rows):
        label = i % 2
        writer.writerow([rng.gauss(label * 2.0, 1.0), rng.gauss(-label, 1.0), label])
autolog.log_artifacts(folder, "data")  # into the run `autolog run` created for this step
autolog.log_metric("rows", args.rows)
