"""Model artifacts on disk: one folder with ``manifest.json`` and ``arrays.npz``, never pickle.

Pickle would execute code from whatever file sits in the models folder and breaks whenever a class
moves; plain arrays plus a JSON manifest are safe to load, diffable, and versioned explicitly. A new
artifact is written to a temporary sibling folder and renamed into place, so a running bot that
loads "the current model" never sees half a file (a model is swapped in atomically: README, "Architecture").
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from core.errors import SonanceError
from core.private_files import PRIVATE_FILE, private_dir

FORMAT_NAME = "sonance-recommender"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"


class ArtifactError(SonanceError):
    user_message = "The recommendation model on disk can't be read; it needs retraining."


@dataclass
class ArtifactWriter:
    """Collects arrays (dense or sparse) under namespaced keys plus JSON-able metadata."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def put(self, key: str, value: np.ndarray) -> None:
        value = np.asarray(value)
        if value.dtype == object:
            value = value.astype(str)
        self.arrays[key] = value

    def put_sparse(self, key: str, matrix: sp.spmatrix) -> None:
        csr = sp.csr_matrix(matrix)
        self.arrays[f"{key}.data"] = csr.data
        self.arrays[f"{key}.indices"] = csr.indices
        self.arrays[f"{key}.indptr"] = csr.indptr
        self.arrays[f"{key}.shape"] = np.asarray(csr.shape, dtype=np.int64)

    def save(self, path: Path) -> Path:
        """Write atomically to folder `path` (replacing an older artifact there)."""
        path = Path(path)
        private_dir(path.parent)  # 0700: models are derived from members' listening histories
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))  # mkdtemp: 0700
        try:
            np.savez(tmp / ARRAYS, **self.arrays)
            manifest = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **self.meta}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
            for written in (tmp / ARRAYS, tmp / MANIFEST):
                os.chmod(written, PRIVATE_FILE)  # inside the 0700 folder: never exposed meanwhile
            if path.exists():
                old = path.with_name(f".{path.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(path, old)
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path


@dataclass
class ArtifactReader:
    """Reads what `ArtifactWriter` wrote; refuses other formats and newer versions by name."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]

    @classmethod
    def open(cls, path: Path) -> ArtifactReader:
        path = Path(path)
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
            with np.load(path / ARRAYS, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as exc:
            raise ArtifactError(detail=f"{path}: {exc}") from None
        if manifest.get("format") != FORMAT_NAME:
            raise ArtifactError(detail=f"{path}: not a Sonance recommender artifact")
        if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
            raise ArtifactError(detail=f"{path}: format version {manifest['format_version']} is newer "
                                       f"than this code understands ({FORMAT_VERSION})")
        return cls(arrays, manifest)

    def get(self, key: str) -> np.ndarray:
        try:
            return self.arrays[key]
        except KeyError:
            raise ArtifactError(detail=f"missing array {key!r}") from None

    def has(self, key: str) -> bool:
        return key in self.arrays or f"{key}.data" in self.arrays

    def get_sparse(self, key: str) -> sp.csr_matrix:
        shape = tuple(int(v) for v in self.get(f"{key}.shape"))
        return sp.csr_matrix((self.get(f"{key}.data"), self.get(f"{key}.indices"), self.get(f"{key}.indptr")),
                             shape=shape)
