"""Where a study's results live when its trials run on a Ray cluster.

Ray Tune's experiment state and trial checkpoints, and promotion's checkpoints, go to the
study's ``results_storage`` (a folder every node reaches, or a pyarrow URI such as
``s3://bucket/path``; default: the run folder). :func:`check_results_storage` proves at
start that the driver can write there; :func:`not_shared_warning` names the field to set
when the cluster spans several hosts and the location is a folder on a local disk (a
warning, not an error: a one-host cluster, or a shared file system we cannot recognize,
is fine).
"""
from __future__ import annotations

import os
from pathlib import Path

from blocks.config import one_line

from ..study import StudyConfig, StudyError

# file systems that every host of a cluster can mount (Linux /proc/mounts types)
SHARED_FS = ("nfs", "nfs4", "cifs", "smb3", "lustre", "gpfs", "ceph", "fuse.ceph", "beegfs",
             "glusterfs", "fuse.glusterfs", "fuse.s3fs", "fuse.gcsfuse", "fuse.juicefs",
             "9p", "virtiofs", "efs", "fuse.sshfs")


def is_uri(location: str) -> bool:
    return "://" in location


def _filesystem(uri: str):
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(uri)


def check_results_storage(cfg: StudyConfig) -> None:
    """Write and delete a probe file in the study's results location (through pyarrow for
    a URI); one error line naming ``results_storage`` if the driver cannot."""
    if cfg.results_storage is None:
        return  # the run folder, created by the run
    where = cfg.results_storage
    if not is_uri(where) and not Path(where).is_dir():
        raise StudyError(f"{cfg.source}: results_storage: the folder {where} does not exist "
                         "(create it on a file system every node mounts, or fix the path)")
    try:
        fs, path = _filesystem(cfg.results_uri if is_uri(where) else str(Path(cfg.results_uri).resolve()))
        fs.create_dir(path, recursive=True)
        probe = f"{path}/.nas-probe-{os.getpid()}"
        with fs.open_output_stream(probe) as f:
            f.write(b"ok")
        fs.delete_file(probe)
    except (OSError, ValueError) as err:
        raise StudyError(f"{cfg.source}: results_storage: {where} is not writable from the "
                         f"driver: {one_line(err)}") from None


def mount_type(path: Path, mounts: str | None = None) -> str:
    """The file-system type of the mount holding ``path`` (longest mount point)."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return ""
    best, kind = "", ""
    target = str(path.resolve())
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1]
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, parts[2]
    return kind


def not_shared_warning(cfg: StudyConfig, nodes: list[dict], mounts: str | None = None) -> str | None:
    """A warning line when the alive Ray nodes (``ray.nodes()``) are on more than one host
    and the results location is a folder on a local disk; None otherwise."""
    hosts = {n.get("NodeManagerAddress") for n in nodes if n.get("Alive")}
    where = cfg.results_uri
    if len(hosts) <= 1 or is_uri(where):
        return None
    kind = mount_type(Path(where), mounts)
    if kind in SHARED_FS:
        return None
    return (f"warning: {cfg.source}: results_storage: the Ray cluster has {len(hosts)} hosts but "
            f"results go to {where} on a local {kind or 'unknown'} file system, which other hosts "
            "cannot read (trial checkpoints and experiment state would be lost with a node); set "
            "results_storage to a shared folder (NFS, ...) or a URI such as s3://BUCKET/PATH")


def ray_storage_path(cfg: StudyConfig) -> str:
    """Ray Tune's and Ray Train's ``storage_path`` for the study."""
    return f"{cfg.results_uri}/ray"


def checkpoint_dir(cfg: StudyConfig) -> Path:
    """The folder of promotion's training checkpoints: below a results folder, or the run
    folder when results go to a URI (training writes plain files)."""
    return Path(cfg.run_dir if is_uri(cfg.results_uri) else cfg.results_uri) / "promote"


def remove_ray_results(cfg: StudyConfig) -> None:
    """Delete the study's Ray experiments (``--fresh``)."""
    import shutil

    where = ray_storage_path(cfg)
    if not is_uri(where):
        shutil.rmtree(where, ignore_errors=True)
        return
    fs, path = _filesystem(where)
    try:
        fs.delete_dir(path)
    except (OSError, FileNotFoundError):
        pass


def warn_if_not_shared(cfg: StudyConfig) -> None:
    """Print :func:`not_shared_warning` for the connected Ray cluster, if any."""
    import sys

    import ray

    line = not_shared_warning(cfg, ray.nodes())
    if line:
        print(line, file=sys.stderr, flush=True)
