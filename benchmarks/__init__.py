"""Overhead and throughput benchmarks: autolog vs. raw vs. MLflow, one command (`make bench`).

This package imports nothing at import time: its worker also runs inside the MLflow virtual
environment, where autolog is not installed.
"""
