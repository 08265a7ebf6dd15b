"""The CI recipes of docs/ci/github-actions.md, run as pipelines on this machine.

Each job runs in a fresh copy of the repository (a checkout), with the variables its CI system
sets; caches and artifacts are directories that outlive the job, as they outlive it in CI. What
cannot run here is emulated by what it does to the files: ``actions/checkout`` and
``actions/setup-python`` (the copy and this interpreter), ``actions/cache``, ``upload-artifact``
and ``download-artifact`` (copies in and out of the cache and artifact stores), and ``pip
install`` (the project is installed already: a shim that accepts it). An expression or action the
emulation does not know fails the run, so a recipe cannot use one unnoticed.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import yaml


class PipelineFailed(AssertionError):
    pass


def _copy_in(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst, dirs_exist_ok=True)
    else:
        shutil.copy2(src, dst)


def _run(script: str, cwd: Path, env: Mapping[str, str], what: str) -> str:
    proc = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise PipelineFailed(f"{what} failed (exit {proc.returncode}):\n{script}\n{output}")
    return output


class Pipeline:
    """What one pipeline run shares: the checkout it copies, its stores, its log."""

    def __init__(self, checkout: Path, work: Path, env: Mapping[str, str], caches: Path) -> None:
        self.checkout = checkout
        self.work = work
        self.env = dict(env)
        self.caches = caches  # outlives the pipeline: the next one restores from it
        self.artifacts = work / "artifacts"
        self.log: list[str] = []
        self.jobs = 0

    def job_dir(self, name: str) -> Path:
        self.jobs += 1
        safe = re.sub(r"[^\w.-]", "_", name)
        directory = self.work / f"job-{self.jobs}-{safe}"
        shutil.copytree(self.checkout, directory)
        return directory


# --- GitHub Actions ------------------------------------------------------------------------------


class GitHubRun(Pipeline):
    """One run of a GitHub Actions workflow on a push to ``main``."""

    def __init__(self, *args: Any, run_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.run_id = run_id
        self.summary = self.work / "step-summary.md"
        self.summary.touch()

    def run(self, workflow: str) -> dict[str, dict[str, str]]:
        """Run every job in the order of ``needs``; the jobs' outputs."""
        doc = yaml.safe_load(workflow)
        env = {k: str(v) for k, v in (doc.get("env") or {}).items()}
        outputs: dict[str, dict[str, str]] = {}
        done: set[str] = set()
        jobs: dict[str, Any] = doc["jobs"]
        while len(done) < len(jobs):
            ready = [
                name
                for name, job in jobs.items()
                if name not in done and set(_as_list(job.get("needs"))) <= done
            ]
            if not ready:
                raise PipelineFailed(f"jobs wait for each other: {sorted(set(jobs) - done)}")
            for name in ready:
                outputs[name] = self._job(name, jobs[name], env, outputs)
                done.add(name)
        return outputs

    def _job(
        self, name: str, job: dict[str, Any], env: dict[str, str], needs: dict[str, Any]
    ) -> dict[str, str]:
        context: dict[str, Any] = {
            "env": env,
            "needs": {n: {"outputs": o} for n, o in needs.items()},
        }
        matrix = (job.get("strategy") or {}).get("matrix")
        if matrix is None:
            return self._steps(name, job, env, context)
        entries = self._expand(matrix, context)
        if not isinstance(entries, dict) or not entries.get("include"):
            raise PipelineFailed(f"job {name}: the matrix {entries!r} has no entries")
        for index, entry in enumerate(entries["include"]):
            self._steps(
                f"{name}-{index}",
                job,
                env,
                {**context, "matrix": entry, "strategy": {"job-index": index}},
            )
        return {}

    def _steps(
        self, name: str, job: dict[str, Any], env: dict[str, str], context: dict[str, Any]
    ) -> dict[str, str]:
        cwd = self.job_dir(name)
        steps: dict[str, dict[str, str]] = {}
        context = {**context, "steps": {}}
        failed = False
        for step in job["steps"]:
            condition = step.get("if")
            if condition is not None and condition != "always()":
                raise PipelineFailed(f"job {name}: unknown condition {condition!r}")
            if failed and condition != "always()":
                continue
            try:
                self._step(name, step, cwd, env, context)
            except PipelineFailed:
                failed = True
                raise
            if step.get("id"):
                steps[step["id"]] = context["steps"].get(step["id"], {})
        outputs = {k: self._expand(v, context) for k, v in (job.get("outputs") or {}).items()}
        return outputs

    def _step(
        self,
        job: str,
        step: dict[str, Any],
        cwd: Path,
        env: dict[str, str],
        context: dict[str, Any],
    ) -> None:
        what = f"job {job}, step {step.get('name') or step.get('uses') or step.get('run')!r}"
        if "run" in step:
            output_file = cwd.parent / f"{cwd.name}-output-{len(self.log)}"
            output_file.write_text("")
            step_env = {
                **self.env,
                **{k: str(self._expand(v, context)) for k, v in env.items()},
                "GITHUB_OUTPUT": str(output_file),
                "GITHUB_STEP_SUMMARY": str(self.summary),
            }
            self.log.append(_run(self._expand(step["run"], context), cwd, step_env, what))
            values = dict(
                line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line
            )
            if step.get("id"):
                context["steps"][step["id"]] = {"outputs": values}
            return
        uses = step["uses"].split("@")[0]
        with_ = {k: self._expand(str(v), context) for k, v in (step.get("with") or {}).items()}
        if uses in ("actions/checkout", "actions/setup-python"):
            return  # the job's directory is a checkout; this interpreter is the Python
        if uses == "actions/cache/restore":
            keys = [with_["key"], *with_.get("restore-keys", "").split()]
            found = self._cache_lookup(keys)
            if found is not None:
                _copy_in(found, cwd / with_["path"])
            return
        if uses == "actions/cache/save":
            target = self.caches / with_["key"]
            if not target.exists() and (cwd / with_["path"]).exists():  # keys are immutable
                _copy_in(cwd / with_["path"], target / with_["path"])
            return
        if uses == "actions/upload-artifact":
            source = cwd / with_["path"]
            if source.exists():
                _copy_in(source, self.artifacts / with_["name"] / source.name)
            return
        if uses == "actions/download-artifact":
            for artifact in sorted(self.artifacts.glob("*")):
                if fnmatch.fnmatch(artifact.name, with_.get("pattern", "*")):
                    _copy_in(artifact, cwd / with_.get("path", ".") / artifact.name)
            return
        raise PipelineFailed(f"{what}: the docs tests do not emulate {uses}")

    def _cache_lookup(self, keys: list[str]) -> Optional[Path]:
        """The exact key, else the newest cache whose key starts with a restore key."""
        exact = self.caches / keys[0]
        if exact.exists():
            return self._cached_file(exact)
        for prefix in keys[1:]:
            hits = [c for c in self.caches.glob("*") if c.name.startswith(prefix)]
            if hits:
                return self._cached_file(max(hits, key=lambda c: c.stat().st_mtime_ns))
        return None

    @staticmethod
    def _cached_file(entry: Path) -> Path:
        files = [p for p in entry.rglob("*") if p.is_file()]
        assert len(files) == 1, files
        return files[0]

    def _expand(self, value: Any, context: dict[str, Any]) -> Any:
        """``${{ expr }}`` replaced; a value that is one ``fromJSON(...)`` becomes the JSON."""
        if not isinstance(value, str):
            return value
        whole = re.fullmatch(r"\$\{\{\s*fromJSON\((.+)\)\s*\}\}", value.strip())
        if whole:
            text = self._lookup(whole.group(1).strip(), context)
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise PipelineFailed(f"fromJSON({text!r}): {exc}") from exc
        return re.sub(
            r"\$\{\{\s*(.+?)\s*\}\}", lambda m: str(self._lookup(m.group(1), context)), value
        )

    def _lookup(self, expression: str, context: dict[str, Any]) -> Any:
        github = {"ref_name": "main", "run_id": str(self.run_id)}
        parts = expression.split(".")
        if parts[0] == "github" and len(parts) == 2 and parts[1] in github:
            return github[parts[1]]
        value: Any = context
        for part in parts:
            if not isinstance(value, dict) or part not in value:
                raise PipelineFailed(f"unknown expression ${{{{ {expression} }}}}")
            value = value[part]
        return value


# --- GitLab CI -----------------------------------------------------------------------------------


class GitLabRun(Pipeline):
    """One run of a GitLab CI pipeline on ``main``."""

    def run(self, config: str) -> None:
        doc = yaml.safe_load(config)
        failed = False
        for stage in doc["stages"]:
            for name, job in doc.items():
                if not isinstance(job, dict) or job.get("stage") != stage:
                    continue
                if failed and job.get("when") != "always":
                    continue
                total = int(job.get("parallel", 1))
                for index in range(1, total + 1):
                    variables = {"CI_NODE_INDEX": str(index), "CI_NODE_TOTAL": str(total)}
                    try:
                        self._job(f"{name}-{index}", job, variables if total > 1 else {})
                    except PipelineFailed:
                        failed = True
                        raise

    def _job(self, name: str, job: dict[str, Any], variables: dict[str, str]) -> None:
        cwd = self.job_dir(name)
        env = {**self.env, **variables}
        cache = job.get("cache") or {}
        key = str(cache.get("key", "default"))
        for path in self.artifacts.rglob("*"):  # earlier stages' artifacts
            if path.is_file():
                _copy_in(path, cwd / path.relative_to(self.artifacts))
        if cache and cache.get("policy", "pull-push") in ("pull", "pull-push"):
            entry = self.caches / _expand_vars(key, env)
            if entry.exists():
                shutil.copytree(entry, cwd, dirs_exist_ok=True)
        script = "\n".join(job["script"])
        self.log.append(_run(script, cwd, env, f"job {name}"))
        for pattern in (job.get("artifacts") or {}).get("paths", []):
            for path in cwd.glob(_expand_vars(pattern, env)):
                _copy_in(path, self.artifacts / path.relative_to(cwd))
        if cache and cache.get("policy", "pull-push") in ("push", "pull-push"):
            entry = self.caches / _expand_vars(key, env)
            for pattern in cache.get("paths", []):
                for path in cwd.glob(pattern):
                    _copy_in(path, entry / path.relative_to(cwd))


def _expand_vars(text: str, env: Mapping[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), m.group(0)), text)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
