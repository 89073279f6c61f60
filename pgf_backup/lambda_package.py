"""The functions' deployment packages, built from this repository's sources, byte for byte the same
whenever the sources are: an unchanged function shows no diff in a preview.

Two packages, each holding only its functions' code, so a change of one never redeploys the other:
- `EXPORTS`: `pgf_backup/__init__.py` and `pgf_backup/exports/*.py`;
- `RESTORE_TESTING`: `pgf_backup/__init__.py`, `pgf_backup/restore_testing/*.py` and the evidence JSON Schema
  (`pgf_backup/restore_testing/*.json`).
The modules use the standard library, boto3 and botocore only (the Python runtime provides the last two). Entries
are in sorted order, each with a fixed time stamp and mode, so neither file times nor the order a file system
lists them in change a byte. Lambda takes the SHA-256 of the package, base64-encoded (`source_code_hash`), to
decide whether the code changed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pgf_backup

# The package root (the folder holding `pgf_backup/`).
SOURCE_ROOT = Path(pgf_backup.__file__).resolve().parent.parent


@dataclass(frozen=True)
class PackageSpec:
    """What goes in a zip (glob patterns relative to the source root) and where the program writes it, relative
    to the project folder it runs in (a relative path keeps the archive the same on every machine that deploys)."""

    label: str
    sources: tuple[str, ...]
    path: Path


EXPORTS = PackageSpec(
    "export", ("pgf_backup/__init__.py", "pgf_backup/exports/*.py"), Path("build") / "lambda" / "pgf-backup-exports.zip"
)
RESTORE_TESTING = PackageSpec(
    "restore testing",
    ("pgf_backup/__init__.py", "pgf_backup/restore_testing/*.py", "pgf_backup/restore_testing/*.json"),
    Path("build") / "lambda" / "pgf-backup-restore-testing.zip",
)
# The export package's (the names its callers import).
SOURCES = EXPORTS.sources
PACKAGE_PATH = EXPORTS.path
# ZIP's earliest time stamp (1980-01-01): file times never reach the archive.
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class LambdaPackage:
    """A built package: where it is, its base64 SHA-256 (Lambda's `source_code_hash`) and its entries."""

    path: Path
    sha256: str
    entries: tuple[str, ...]


def package_bytes(root: Path = SOURCE_ROOT, spec: PackageSpec = EXPORTS) -> tuple[bytes, tuple[str, ...]]:
    """The zip's bytes and its entry names, from the sources under `root`."""
    names = sorted({path.relative_to(root).as_posix() for pattern in spec.sources for path in root.glob(pattern)})
    if not names:
        raise FileNotFoundError(f"no {spec.label} sources under {root} ({', '.join(spec.sources)})")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so the mode below is read as such
            info.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
            archive.writestr(info, (root / name).read_bytes(), compresslevel=9)
    return buffer.getvalue(), tuple(names)


def build_package(project_dir: Path, root: Path = SOURCE_ROOT, spec: PackageSpec = EXPORTS) -> LambdaPackage:
    """Write the package under `project_dir` (rewritten only when its bytes change) and describe it."""
    data, names = package_bytes(root, spec)
    target = project_dir / spec.path
    if not target.is_file() or target.read_bytes() != data:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".zip.partial")
        partial.write_bytes(data)
        partial.replace(target)
    return LambdaPackage(spec.path, base64.b64encode(hashlib.sha256(data).digest()).decode(), names)
