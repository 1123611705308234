"""Run a job of this code location in this process, as an ordinary run of the instance.

`JobDefinition.execute_in_process` records no origin for its run, so the UI can neither re-execute it
(`launch_reexecution_from_parent_run` needs `remote_job_origin`: dagster#19458) nor show it on the Overview
timeline (which drops runs without a repository origin). Here the run is created with the origins a launch
from the UI gives it, naming the same code location as the workspace files, then executed synchronously in
this process, so `reval sync` still waits, reads its result and handles Ctrl-C.

The origin's names are all the UI reads from it: `reval-<ENV>` (`workspace.yaml`, `deploy/workspace.*.yaml`)
and the repository of a `Definitions`, `__repository__`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.execution.api import execute_run
from dagster._core.remote_origin import ManagedGrpcPythonEnvCodeLocationOrigin, RemoteRepositoryOrigin
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

DEFINITIONS_MODULE = "reval_assets.definitions"
# `execute_run` honours the job's executor (multiprocess for an asset job); `execute_in_process` forced this one.
# Kept in the run's config, so a re-execution from the UI runs in one process too.
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


def location_name(env: str) -> str:
    """The code location the workspace file of `env` declares."""
    return f"reval-{env.upper()}"


def execute_as_instance_run(job_name: str, instance: dg.DagsterInstance, *, env: str, run_id: str,
                            run_config: Mapping | None = None, tags: Mapping[str, str] | None = None,
                            asset_selection: Iterable[dg.AssetKey] | None = None) -> dg.JobExecutionResult:
    """Create the run with the origins a UI launch gives it, then execute it here; a failure is in the result."""
    target = LoadableTargetOrigin(executable_path=sys.executable, module_name=DEFINITIONS_MODULE,
                                  attribute=f"defs_{env}")
    repository = ReconstructableRepository.for_module(DEFINITIONS_MODULE, f"defs_{env}")
    job = repository.get_reconstructable_job(job_name)
    definition = repository.get_definition()
    job_def = definition.get_job(job_name)
    origin = ManagedGrpcPythonEnvCodeLocationOrigin(loadable_target_origin=target, location_name=location_name(env))
    run = instance.create_run_for_job(
        job_def=job_def,
        run_id=run_id,
        run_config={**IN_PROCESS, **(run_config or {})},
        tags={**job_def.tags, **(tags or {})},  # create_run_for_job does not add the job's own tags
        asset_selection=frozenset(asset_selection) if asset_selection is not None else None,
        remote_job_origin=RemoteRepositoryOrigin(code_location_origin=origin, repository_name=definition.name)
        .get_job_origin(job_name),
        job_code_origin=job.get_python_origin(),
    )
    return execute_run(job, run, instance, raise_on_error=False)
