"""What the CI system tells a run about itself, read from the environment, and the shard a run is
(``K/N``, `parse_shard`).

A pipeline id says which shard runs belong together: `merge.py` folds the shard runs of one
pipeline into one run.  The first variable that is set wins; ``PYTEST_FEEDBACK_PIPELINE`` lets any
CI system (or a script running shards by hand) name its pipeline.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Optional

from pytest_feedback.errors import ConfigError

ENV_PIPELINE = "PYTEST_FEEDBACK_PIPELINE"
#: What ``--feedback-shard`` accepts.
SHARD_FORM = "K/N with 1 <= K <= N, e.g. 2/4, or auto"

#: (CI system, variable naming one pipeline run, variable that qualifies it or "").
#: A re-run of some jobs of a pipeline keeps its id: a retried shard replaces the earlier one.
PIPELINE_VARIABLES: tuple[tuple[str, str, str], ...] = (
    ("github", "GITHUB_RUN_ID", "GITHUB_REPOSITORY"),
    ("gitlab", "CI_PIPELINE_ID", "CI_PROJECT_PATH"),
    ("buildkite", "BUILDKITE_BUILD_ID", ""),
    ("circleci", "CIRCLE_WORKFLOW_ID", ""),
    ("azure", "BUILD_BUILDID", "SYSTEM_TEAMPROJECTID"),
    ("travis", "TRAVIS_BUILD_ID", "TRAVIS_REPO_SLUG"),
    ("jenkins", "BUILD_TAG", ""),
)


def pipeline_id(environ: Mapping[str, str] = os.environ) -> Optional[str]:
    """The id of the CI pipeline this runs in, e.g. ``github:org/repo/123``; None outside CI."""
    explicit = environ.get(ENV_PIPELINE, "").strip()
    if explicit:
        return explicit
    for system, variable, qualifier in PIPELINE_VARIABLES:
        value = environ.get(variable, "").strip()
        if value:
            prefix = environ.get(qualifier, "").strip() if qualifier else ""
            return f"{system}:{prefix}/{value}" if prefix else f"{system}:{value}"
    return None


#: (CI system, variable with this job's index, variable with the number of jobs, 0-based index).
SHARD_VARIABLES: tuple[tuple[str, str, str, bool], ...] = (
    ("GitLab CI", "CI_NODE_INDEX", "CI_NODE_TOTAL", False),
    ("CircleCI", "CIRCLE_NODE_INDEX", "CIRCLE_NODE_TOTAL", True),
    ("Buildkite", "BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT", True),
)


def ci_shard(environ: Mapping[str, str] = os.environ) -> Optional[tuple[int, int, str]]:
    """(K, N, CI system) of a parallel CI job, 1-based; None when no CI says it runs in parallel.

    Raises `ConfigError` when the variables are set but make no shard.
    """
    for system, index_var, total_var, zero_based in SHARD_VARIABLES:
        index = environ.get(index_var, "").strip()
        total = environ.get(total_var, "").strip()
        if not (index and total):
            continue
        if index.isdigit() and total.isdigit():
            k, n = int(index) + int(zero_based), int(total)
            if 1 <= k <= n:
                return k, n, system
        raise ConfigError(
            f"--feedback-shard auto: {system}'s {index_var}={index!r} and {total_var}={total!r} "
            "make no shard; pass --feedback-shard K/N"
        )
    return None


def parse_shard(text: str, *, what: str = "--feedback-shard") -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``; anything else is a `ConfigError` naming ``what`` and the form."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match:
        k, n = int(match.group(1)), int(match.group(2))
        if 1 <= k <= n:
            return k, n
    raise ConfigError(f"{what}: {text!r} is not a shard; expected {SHARD_FORM}")
