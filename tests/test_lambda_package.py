"""The export functions' deployment package: the same bytes for the same sources, and only what Lambda can run."""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import os
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from pgf_backup.lambda_package import PACKAGE_PATH, SOURCE_ROOT, build_package, package_bytes

# What the Python runtime provides besides the standard library
# (https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html: "the SDK for Python (Boto3)").
RUNTIME_PACKAGES = frozenset({"boto3", "botocore"})
PACKAGE = "pgf_backup.exports"
TOP_PACKAGE = "pgf_backup"


def _expected_entries(root: Path) -> list[str]:
    """What the package must hold: the top package's __init__ and every module of pgf_backup/exports."""
    modules = [f"pgf_backup/exports/{path.name}" for path in (root / "pgf_backup" / "exports").glob("*.py")]
    return sorted(["pgf_backup/__init__.py", *modules])


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """A copy of the package's sources (and some files it must leave out), to change without touching the repo."""
    root = tmp_path / "src"
    for name in _expected_entries(SOURCE_ROOT):
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(SOURCE_ROOT / name, target)
    # Neither other parts of pgf_backup nor anything but .py files of the export modules belong in it.
    (root / "pgf_backup" / "stacks.py").write_text("import pulumi\n")
    (root / "pgf_backup" / "exports" / "README.md").write_text("notes\n")
    (root / "pgf_backup" / "exports" / "__pycache__").mkdir()
    (root / "pgf_backup" / "exports" / "__pycache__" / "store.cpython-312.pyc").write_bytes(b"\0")
    (root / "pgf_backup" / "exports" / "nested").mkdir()
    (root / "pgf_backup" / "exports" / "nested" / "deep.py").write_text("x = 1\n")
    return root


def _a_module(root: Path) -> Path:
    return root / "pgf_backup" / "exports" / "__init__.py"


def _sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_same_sources_give_the_same_bytes(sources: Path, tmp_path: Path) -> None:
    first, names = package_bytes(sources)
    assert package_bytes(sources) == (first, names)
    one = build_package(tmp_path / "one", sources)
    two = build_package(tmp_path / "two", sources)
    assert one == two
    assert (tmp_path / "one" / PACKAGE_PATH).read_bytes() == (tmp_path / "two" / PACKAGE_PATH).read_bytes() == first


def test_file_times_change_nothing(sources: Path) -> None:
    before = package_bytes(sources)
    for number, path in enumerate(sorted(sources.rglob("*.py")), start=1):
        os.utime(path, (1_700_000_000 + number * 86_400, 1_700_000_000 + number * 86_400))
    assert package_bytes(sources) == before


def test_file_mode_changes_nothing(sources: Path) -> None:
    before = package_bytes(sources)
    _a_module(sources).chmod(0o600)
    assert package_bytes(sources) == before


def test_a_change_of_content_changes_the_hash(sources: Path, tmp_path: Path) -> None:
    original = build_package(tmp_path / "project", sources).sha256
    module = _a_module(sources)
    text = module.read_text()
    module.write_text(text + "\n# changed\n")
    changed = build_package(tmp_path / "project", sources)
    assert changed.sha256 != original
    assert changed.sha256 == _sha256((tmp_path / "project" / PACKAGE_PATH).read_bytes())
    module.write_text(text)
    assert build_package(tmp_path / "project", sources).sha256 == original


def test_a_new_module_is_packaged(sources: Path) -> None:
    before, names = package_bytes(sources)
    (sources / "pgf_backup" / "exports" / "zz_new.py").write_text('"""New."""\n')
    after, new_names = package_bytes(sources)
    assert after != before
    assert new_names == (*names, "pgf_backup/exports/zz_new.py")


def test_entries_are_the_init_and_the_export_modules_sorted(sources: Path) -> None:
    data, names = package_bytes(sources)
    expected = _expected_entries(sources)
    assert list(names) == expected
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == expected
        assert archive.testzip() is None
        for name in expected:
            assert archive.read(name) == (sources / name).read_bytes(), name


def test_the_repository_package_holds_exactly_its_sources() -> None:
    # Derived from the glob: modules are being added, and each one belongs in the package.
    data, names = package_bytes()
    assert list(names) == _expected_entries(SOURCE_ROOT)
    assert "pgf_backup/exports/handlers.py" in names  # the functions' handler module
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == list(names)


def test_every_entry_has_the_fixed_time_stamp_and_mode(sources: Path) -> None:
    data, _ = package_bytes(sources)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0), info.filename
            assert info.external_attr >> 16 == 0o100644, info.filename  # a regular file, rw-r--r--
            assert info.create_system == 3, info.filename  # Unix: Lambda reads the mode as such
            assert info.compress_type == zipfile.ZIP_DEFLATED, info.filename


def test_no_sources_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no export sources"):
        package_bytes(tmp_path)


# ---------------------------------------------------------------------------------------------
# build_package


def test_build_writes_the_package_under_the_project_folder(sources: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    built = build_package(project, sources)
    data, names = package_bytes(sources)
    assert built.path == PACKAGE_PATH and not built.path.is_absolute()
    assert (project / built.path).read_bytes() == data
    assert built.sha256 == _sha256(data)
    assert built.entries == names
    assert [p.name for p in (project / PACKAGE_PATH).parent.iterdir()] == [PACKAGE_PATH.name]  # no partial file left


def test_build_does_not_rewrite_an_unchanged_package(sources: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    build_package(project, sources)
    target = project / PACKAGE_PATH
    os.utime(target, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    inode = target.stat().st_ino
    build_package(project, sources)
    assert target.stat().st_mtime_ns == 1_000_000_000_000_000_000
    assert target.stat().st_ino == inode


def test_build_replaces_a_stale_package(sources: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    target = project / PACKAGE_PATH
    target.parent.mkdir(parents=True)
    target.write_bytes(b"an older package")
    built = build_package(project, sources)
    assert target.read_bytes() == package_bytes(sources)[0]
    assert built.sha256 == _sha256(target.read_bytes())


# ---------------------------------------------------------------------------------------------
# What the modules import: the Lambda runtime has the standard library, boto3 and botocore only


def _module_of(entry: str) -> str:
    return entry.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    """(module, names) of each import that runs: `if TYPE_CHECKING:` bodies are only read by type checkers."""

    def __init__(self, entry: str) -> None:
        module = _module_of(entry)
        # The package a relative import starts from: the module's own for an __init__, its parent's otherwise.
        self.package = module if entry.endswith("__init__.py") else module.rpartition(".")[0]
        self.found: list[tuple[str, tuple[str, ...]]] = []

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for statement in node.orelse:
                self.visit(statement)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.extend((alias.name, ()) for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            parts = self.package.split(".")
            anchor = ".".join(parts[: len(parts) - (node.level - 1)])
            base = f"{anchor}.{base}" if base else anchor
        names = tuple(alias.name for alias in node.names)
        if base == TOP_PACKAGE:
            # `from pgf_backup import x` imports the module pgf_backup.x (its __init__ defines nothing else).
            self.found.extend((f"{base}.{name}", ()) for name in names)
        else:
            self.found.append((base, names))


def _runtime_imports(source: str, entry: str) -> list[tuple[str, tuple[str, ...]]]:
    visitor = _Imports(entry)
    visitor.visit(ast.parse(source))
    return visitor.found


def _forbidden(source: str, entry: str) -> list[str]:
    """The imports of `source` the Lambda runtime could not satisfy."""
    bad = []
    for module, _names in _runtime_imports(source, entry):
        top = module.partition(".")[0]
        if top in sys.stdlib_module_names or top in RUNTIME_PACKAGES:
            continue
        # The export modules, and the top package whose __init__ the zip holds too.
        if module in (PACKAGE, TOP_PACKAGE) or module.startswith(f"{PACKAGE}."):
            continue
        bad.append(module)
    return sorted(set(bad))


def test_the_import_check_finds_what_the_runtime_lacks() -> None:
    source = (
        "from __future__ import annotations\n"
        "import json, boto3\n"
        "from botocore.config import Config\n"
        "from typing import TYPE_CHECKING\n"
        "import yaml\n"
        "from pgf_backup.config import load\n"
        "from pgf_backup.exports import store\n"
        "from . import quicksight\n"
        "from ..stacks import build\n"
        "from .. import exports, config\n"
        "if TYPE_CHECKING:\n"
        "    from mypy_boto3_s3 import S3Client\n"
        "def f():\n"
        "    import pydantic\n"
        "try:\n"
        "    import ujson\n"
        "except ImportError:\n"
        "    import json as ujson\n"
    )
    assert _forbidden(source, "pgf_backup/exports/catalog.py") == [
        "pgf_backup.config",
        "pgf_backup.stacks",
        "pydantic",
        "ujson",
        "yaml",
    ]


def _entries() -> dict[str, str]:
    data, names = package_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name).decode() for name in names}


def test_modules_import_only_what_the_lambda_runtime_has() -> None:
    problems = {entry: bad for entry, source in _entries().items() if (bad := _forbidden(source, entry))}
    assert not problems, f"imports the Python Lambda runtime does not provide: {problems}"


def _unpackaged(entries: dict[str, str]) -> dict[str, list[str]]:
    """Per entry, the modules of pgf_backup.exports it imports that the package does not hold."""
    modules = {_module_of(entry) for entry in entries}
    missing: dict[str, list[str]] = {}
    for entry, source in entries.items():
        for module, names in _runtime_imports(source, entry):
            if not (module == PACKAGE or module.startswith(f"{PACKAGE}.")):
                continue
            wanted = [module] if module != PACKAGE else [f"{PACKAGE}.{name}" for name in names]
            if absent := [m for m in wanted if m not in modules]:
                missing.setdefault(entry, []).extend(absent)
    return missing


def test_the_packaging_check_finds_a_missing_module() -> None:
    entries = {
        "pgf_backup/__init__.py": "",
        "pgf_backup/exports/__init__.py": "",
        "pgf_backup/exports/store.py": "import json\n",
        "pgf_backup/exports/handlers.py": (
            "from pgf_backup.exports import catalog, store\n"
            "from pgf_backup.exports.store import RETRY_CONFIG\n"
            "from . import quicksight\n"
        ),
    }
    assert _unpackaged(entries) == {
        "pgf_backup/exports/handlers.py": ["pgf_backup.exports.catalog", "pgf_backup.exports.quicksight"]
    }


def test_the_package_is_self_contained() -> None:
    # Every module of pgf_backup.exports that a module imports is in the zip (else the function fails at import).
    missing = _unpackaged(_entries())
    assert not missing, f"modules imported but not packaged: {missing}"


# ---------------------------------------------------------------------------------------------
# The restore testing package: its own zip, the validator and its evidence schema only


def test_restore_testing_package_holds_the_validator_and_its_schema() -> None:
    from pgf_backup.lambda_package import RESTORE_TESTING

    data, names = package_bytes(spec=RESTORE_TESTING)
    package = SOURCE_ROOT / "pgf_backup" / "restore_testing"
    expected = sorted(
        [
            "pgf_backup/__init__.py",
            *(f"pgf_backup/restore_testing/{p.name}" for p in package.glob("*.py")),
            *(f"pgf_backup/restore_testing/{p.name}" for p in package.glob("*.json")),
        ]
    )
    assert list(names) == expected
    assert "pgf_backup/restore_testing/validator.py" in names
    assert "pgf_backup/restore_testing/evidence.schema.json" in names
    assert not any(name.startswith("pgf_backup/exports/") for name in names)
    assert package_bytes(spec=RESTORE_TESTING) == (data, names)  # deterministic
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0) and info.external_attr >> 16 == 0o100644


def test_restore_testing_modules_import_only_what_the_runtime_has() -> None:
    from pgf_backup.lambda_package import RESTORE_TESTING

    data, names = package_bytes(spec=RESTORE_TESTING)
    modules = {_module_of(n) for n in names if n.endswith(".py")}
    problems: dict[str, list[str]] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in names:
            if not name.endswith(".py"):
                continue
            for module, imported in _runtime_imports(archive.read(name).decode(), name):
                top = module.partition(".")[0]
                if top in sys.stdlib_module_names or top in RUNTIME_PACKAGES:
                    continue
                # `from package import module` needs the module's file too.
                submodules = [
                    f"{module}.{n}" for n in imported if (SOURCE_ROOT / module.replace(".", "/") / f"{n}.py").is_file()
                ]
                absent = [w for w in [module, *submodules] if w not in modules]
                if absent:
                    problems[name] = absent
    assert not problems, f"imports the restore testing package cannot satisfy: {problems}"


def test_the_two_packages_are_written_apart(tmp_path: Path) -> None:
    from pgf_backup.lambda_package import EXPORTS, RESTORE_TESTING

    exports = build_package(tmp_path)
    restore = build_package(tmp_path, spec=RESTORE_TESTING)
    assert exports.path == EXPORTS.path == PACKAGE_PATH and restore.path == RESTORE_TESTING.path
    assert exports.path != restore.path and exports.sha256 != restore.sha256
    assert (tmp_path / restore.path).read_bytes() == package_bytes(spec=RESTORE_TESTING)[0]
