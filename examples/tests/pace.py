"""Simulated work for the example suite. EXAMPLE_PACE scales every pause (0.01: a fast run)."""

import os
import time

PACE = float(os.environ.get("EXAMPLE_PACE", "1"))


def work(seconds):
    time.sleep(seconds * PACE)
