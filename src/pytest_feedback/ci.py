"""What the CI system tells a run about itself, read from the environment.

A pipeline id says which shard runs belong together: `merge.py` folds the shard runs of one
pipeline into one run.  The first variable that is set wins; ``PYTEST_FEEDBACK_PIPELINE`` lets any
CI system (or a script running shards by hand) name its pipeline.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Optional

ENV_PIPELINE = "PYTEST_FEEDBACK_PIPELINE"

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
