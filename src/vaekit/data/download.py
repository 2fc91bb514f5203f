"""Fetching dataset files from their official mirrors, and checking them.

Every file vaekit reads from a mirror has a published checksum (MD5 for the MNIST-family IDX
files, as torchvision records them; SHA-256 of the text for Larochelle's binarized MNIST, as
TensorFlow Datasets records them). A file is checked before it is parsed, and a download is
written to ``NAME.part`` and moved into place only once its checksum matches, so a broken
connection never leaves a half file under the real name.

Network access happens only in :func:`fetch`; tests replace the mirror list with ``file://``
addresses.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Optional

from ..errors import ChecksumError, DataError

logger = logging.getLogger("vaekit")

_CHUNK = 1 << 20
_TIMEOUT_S = 60
_USER_AGENT = "vaekit (https://pypi.org/project/vaekit)"


def file_digest(path: Path, algorithm: str = "md5") -> str:
    """Hex digest of a file's bytes, read in chunks."""
    digest = hashlib.new(algorithm)
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                digest.update(chunk)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


def check_md5(path: Path, expected: str) -> None:
    """Raise ChecksumError unless the file's MD5 is ``expected``."""
    got = file_digest(path, "md5")
    if got != expected:
        raise ChecksumError(
            f"{path} is corrupt or incomplete (MD5 {got}, expected {expected}); "
            "delete it so it is downloaded again"
        )


def check_sha256(data: bytes, expected: str, path: Path) -> None:
    """Raise ChecksumError unless SHA-256 of ``data`` (the content of ``path``) is ``expected``."""
    got = hashlib.sha256(data).hexdigest()
    if got != expected:
        raise ChecksumError(
            f"{path} is corrupt or incomplete (SHA-256 of its content {got[:16]}..., expected "
            f"{expected[:16]}...); delete it so it is downloaded again"
        )


def read_maybe_gzip(path: Path) -> bytes:
    """The content of ``path``, decompressed in memory when the name ends in ``.gz``.

    Decompressing in memory keeps the data folder untouched: it may be read-only or shared.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError; truncation is EOFError
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"{path} is corrupt ({reason}); delete it so it is downloaded again"
        ) from None


def missing_files(folder: Path, names: list[str], accept_gz: bool = False) -> list[str]:
    """Names not present in ``folder`` (with ``accept_gz``, ``NAME.gz`` also counts)."""
    return [
        n for n in names
        if not (folder / n).is_file() and not (accept_gz and (folder / (n + ".gz")).is_file())
    ]


def ensure_files(
    folder: Path,
    names: list[str],
    mirrors: list[str],
    *,
    what: str,
    download: bool,
    md5: Optional[dict[str, str]] = None,
    sha256: Optional[dict[str, str]] = None,
    accept_gz: bool = False,
    root: Optional[Path] = None,
) -> None:
    """Make sure every name in ``names`` is in ``folder``, downloading the missing ones.

    With ``download=False`` a missing file is a DataError that says where to put it; ``root``
    (the data folder that ``folder`` lies in) lets it also name the two ways to point vaekit at
    a copy elsewhere, --data-dir and $VAEKIT_DATA_DIR.
    """
    missing = missing_files(folder, names, accept_gz)
    if not missing:
        return
    hint = f"put {', '.join(missing)} in {folder}"
    if root is not None:
        inside = Path(folder).relative_to(root) if Path(folder).is_relative_to(root) else Path(Path(folder).name)
        hint += f" (or point --data-dir or $VAEKIT_DATA_DIR at a folder DIR holding them in DIR/{inside.as_posix()})"
    if not download:
        raise DataError(f"{what} files not found: {hint}, or set data.download=true to fetch them")
    for name in missing:
        fetch(
            [m.rstrip("/") + "/" + name for m in mirrors],
            folder / name,
            md5=(md5 or {}).get(name),
            sha256=(sha256 or {}).get(name),
            hint=hint,
        )


def fetch(
    urls: list[str],
    dest: Path,
    *,
    md5: Optional[str] = None,
    sha256: Optional[str] = None,
    hint: str = "",
) -> Path:
    """Download the first of ``urls`` that answers into ``dest``, checking its checksum.

    Mirrors are tried in order. A checksum mismatch removes the bad file and tries the next
    mirror; when none gives a good file the error is ChecksumError (some mirror answered with
    wrong bytes) or DataError (none could be reached), and names what to do instead.
    """
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot create {dest.parent} ({exc.strerror or exc}); set data.data_dir or "
            "VAEKIT_DATA_DIR to a writable folder"
        ) from None
    part = dest.with_name(dest.name + ".part")
    failures: list[str] = []
    bad_checksum = False
    for url in urls:
        logger.info("downloading %s to %s", url, dest)
        try:
            digests = _download(url, part)
        except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError is an OSError
            _remove(part)
            if isinstance(exc, PermissionError):
                raise DataError(
                    f"cannot write {part} ({exc.strerror or exc}); set data.data_dir or "
                    "VAEKIT_DATA_DIR to a writable folder"
                ) from None
            reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
            failures.append(f"{url}: {reason}")
            continue
        expected = {"md5": md5, "sha256": sha256}
        wrong = [alg for alg, hexd in expected.items() if hexd and digests[alg] != hexd]
        if wrong:
            _remove(part)
            bad_checksum = True
            failures.append(f"{url}: {wrong[0].upper()} {digests[wrong[0]]} != {expected[wrong[0]]}")
            continue
        try:
            os.replace(part, dest)
        except OSError as exc:
            _remove(part)
            raise DataError(f"cannot move the download into {dest}: {exc.strerror or exc}") from None
        return dest
    summary = "; ".join(failures) if failures else "no mirror listed"
    if bad_checksum:
        raise ChecksumError(
            f"downloaded {dest.name} does not match its published checksum ({summary}); "
            f"the bad file was removed; try again later or {hint}"
        )
    raise DataError(
        f"cannot download {dest.name} ({summary}); without network access {hint}"
    )


def _download(url: str, part: Path) -> dict[str, str]:
    """Stream ``url`` to ``part`` and return its MD5 and SHA-256."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response, open(part, "wb") as out:
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            md5.update(chunk)
            sha.update(chunk)
            out.write(chunk)
    return {"md5": md5.hexdigest(), "sha256": sha.hexdigest()}


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
