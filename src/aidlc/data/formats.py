"""Reading offered files (CSV, Parquet, JSON Lines, each optionally gzip) into polars, safely.

A file that cannot be read becomes one `InvalidInput` with a short reason; size limits are
checked before parsing and while decompressing, so a gzip bomb stops at the limit.
"""

from __future__ import annotations

import gzip
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from aidlc.errors import InvalidInput

if TYPE_CHECKING:
    import polars as pl

    from aidlc.core.config import DataConfig

FORMATS = ("csv", "parquet", "jsonl")
_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_CHUNK = 1 << 20


def detect_format(name: str, fmt: str | None = None) -> tuple[str, bool]:
    """(format, gzipped) from a file name, or from an explicit `fmt`.

    >>> detect_format("sales.csv.gz")
    ('csv', True)
    """
    lower = name.lower()
    gz = lower.endswith(".gz")
    if gz:
        lower = lower[:-3]
    if fmt is not None:
        if fmt not in FORMATS:
            raise InvalidInput(f"unknown format {fmt[:20]!r}; use one of {', '.join(FORMATS)}")
        return fmt, gz
    for suffix, found in _SUFFIXES.items():
        if lower.endswith(suffix):
            return found, gz
    raise InvalidInput(
        f"cannot tell the format of {name[:100]!r}: name it .csv, .parquet or .jsonl "
        "(optionally .gz), or pass --format"
    )


@contextmanager
def _gunzipped(path: Path, limit: int) -> Iterator[Path]:
    """Decompress to a private temporary file, refusing output beyond `limit` bytes."""
    with tempfile.TemporaryDirectory(prefix="aidlc-gunzip-") as tmp:
        out_path = Path(tmp) / "data"
        written = 0
        try:
            with gzip.open(path, "rb") as src, out_path.open("wb") as out:
                while chunk := src.read(_CHUNK):
                    written += len(chunk)
                    if written > limit:
                        raise InvalidInput(
                            f"decompressed data exceeds the limit of {limit} bytes "
                            "(data.max_decompressed_bytes): refusing a possible gzip bomb"
                        )
                    out.write(chunk)
        except (OSError, EOFError, zlib.error) as exc:
            raise InvalidInput(f"not a valid gzip file: {exc}") from None
        yield out_path


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


def read_table(
    path: Path, fmt: str, *, gz: bool, max_decompressed: int, max_columns: int
) -> pl.DataFrame:
    """Read a file into a DataFrame. CSV columns stay text: the contract decides their types."""
    import polars as pl

    if gz:
        with _gunzipped(path, max_decompressed) as plain:
            return read_table(
                plain, fmt, gz=False, max_decompressed=max_decompressed, max_columns=max_columns
            )
    try:
        if fmt == "csv":
            separator = "\t" if path.suffix.lower() == ".tsv" else ","
            df = pl.read_csv(path, infer_schema=False, separator=separator, encoding="utf8")
        elif fmt == "parquet":
            df = pl.read_parquet(path)
        else:
            if path.stat().st_size == 0:
                raise InvalidInput("the file is empty")
            df = pl.read_ndjson(path, infer_schema_length=None)
    except pl.exceptions.NoDataError:
        raise InvalidInput("the file is empty") from None
    except pl.exceptions.PolarsError as exc:
        raise InvalidInput(f"cannot read the file as {fmt}: {_short(exc)}") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read the file as {fmt}: {_short(exc)}") from None
    if df.width > max_columns:
        raise InvalidInput(
            f"{df.width} columns exceed the limit of {max_columns} (data.max_columns)"
        )
    if len(set(df.columns)) != len(df.columns):
        raise InvalidInput("the file has duplicate column names")
    return df


def read_file(
    path: Path, limits: DataConfig, *, name: str | None = None, fmt: str | None = None
) -> pl.DataFrame:
    """Detect the format from `name` (default: the path's name) and read under `limits`."""
    found, gz = detect_format(name or path.name, fmt)
    return read_table(
        path,
        found,
        gz=gz,
        max_decompressed=limits.max_decompressed_bytes,
        max_columns=limits.max_columns,
    )
