"""Records files: CSV or Parquet tables read in chunks, refused clearly.

:class:`RecordsTable` opens a records file once (a Parquet file's footer is
read once, whatever is asked of it: its columns, its row count, a column's
type, its chunks); :func:`iter_records`, :func:`read_records` and
:func:`count_records` are the public faces. Only an empty CSV cell is
missing, and text columns stay text.
"""

import codecs
import csv
import os

import numpy as np
import pandas as pd

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.utils._hashing import file_sha256

__all__ = [
    "RECORDS_FORMATS",
    "RecordsTable",
    "count_records",
    "iter_records",
    "read_records",
    "records_format",
]

#: File extensions of records files, by the format name used everywhere
#: (``"csv"`` or ``"parquet"``): inputs, predictions and error reports.
RECORDS_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def records_format(path, what="input"):
    """``"csv"`` or ``"parquet"`` from the extension of ``path``, else ParameterError.

    ``what`` names the file in the message (``"input"``, ``"output"``,
    ``"errors"``).
    """
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in RECORDS_FORMATS:
        raise ParameterError(
            f"{what} {os.fspath(path)!r} must be a .csv or .parquet file; got "
            f"the extension {ext or '(none)'!r}"
        )
    return RECORDS_FORMATS[ext]


def check_records_path(path):
    """``path`` as a string, or InputError when it is no file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError("records file not found", source=path)
    if os.path.isdir(path):
        raise InputError("is a directory, not a records file", source=path)
    return path


def _csv_kwargs(text_columns):
    # Only an empty cell is missing: a title "NA" or "None" is text.
    return dict(
        dtype={c: object for c in text_columns},
        keep_default_na=False,
        na_values=[""],
    )


def _first_bad_utf8(path, block_size=1 << 20):
    """``(byte offset, line, bad bytes)`` of the first non-UTF-8 bytes, or None.

    Streams the file through an incremental decoder, so the offset is the
    one in the file (a chunked reader's exception only knows its buffer).
    """
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0
    lines = 1
    with open(path, "rb") as fh:
        while True:
            block = fh.read(block_size)
            pending = decoder.getstate()[0]
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                data = pending + block
                at = offset - len(pending) + exc.start
                before = data[: exc.start]
                return at, lines + before.count(b"\n"), data[exc.start : exc.end]
            if not block:
                return None
            lines += block.count(b"\n")
            offset += len(block)


def _not_utf8(path):
    found = _first_bad_utf8(path)
    if found is None:  # the file changed since pandas read it
        return InputError("not UTF-8 text: save the CSV as UTF-8", source=path)
    at, line, bad = found
    return InputError(
        f"not UTF-8 text: byte {at} (line {line}) is 0x{bad.hex()}, which is not "
        "UTF-8 (Latin-1 or Windows-1252?); save the CSV as UTF-8",
        source=path,
    )


def _refuse_duplicates(names, path, *, csv=False):
    """Raise InputError naming every column name that occurs more than once."""
    seen = {}
    for i, name in enumerate(names):
        seen.setdefault(name, []).append(i)
    dups = {n: pos for n, pos in seen.items() if len(pos) > 1 and n != ""}
    if dups:
        first = next(iter(dups))
        hint = f" (pandas would read the second as {first + '.1'!r})" if csv else ""
        listed = "; ".join(
            f"{n!r} at columns {', '.join(str(p + 1) for p in pos)}"
            for n, pos in dups.items()
        )
        raise InputError(
            f"duplicate column names: {listed}. Which one a model would read is "
            f"ambiguous{hint}; give every column a distinct name",
            source=path,
        )


def _csv_header(path):
    """The CSV's header names, read as pandas reads them (first non-blank row)."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for row in csv.reader(fh):
            if row:
                return row
    return []


class CsvRecordCounter:
    """Count the records of a CSV streamed through it block by block.

    A record ends at a newline outside quotes: a quoted title with a line
    break in it is one record, not two (counting lines would make a
    progress bar stop short). RFC 4180 doubles a quote inside a quoted
    field, so the parity of the quotes seen so far tells whether a newline
    is inside one; a UTF-8 multi-byte character never holds a quote byte.
    Blank lines, which pandas skips, are counted: the count is at most one
    per blank line too high.
    """

    def __init__(self):
        self._quoted = False  # inside a quoted field where the last block ended
        self._ends = 0
        self._last = b"\n"

    def __call__(self, block):
        """Count one block of the file's bytes."""
        if not block:
            return
        data = np.frombuffer(block, dtype=np.uint8)
        newlines = np.flatnonzero(data == 10)
        quotes = np.flatnonzero(data == 34)
        if len(quotes) == 0:
            if not self._quoted:
                self._ends += len(newlines)
        else:
            before = np.searchsorted(quotes, newlines) + int(self._quoted)
            self._ends += int(np.count_nonzero(before % 2 == 0))
            self._quoted = bool((len(quotes) + int(self._quoted)) % 2)
        self._last = block[-1:]

    @property
    def records(self):
        """Records counted so far, less the header row."""
        n = self._ends + (self._last != b"\n")
        return max(n - 1, 0)


class RecordsTable:
    """A records file, opened once: its format, columns, rows and chunks.

    A Parquet file's footer is read once, here; every later question (its
    column names, its number of rows, a column's type, its chunks) is
    answered from it. Use it as a context manager, or call :meth:`close`.

    Parameters
    ----------
    path : str or path-like
        A ``.csv`` (UTF-8, header row) or ``.parquet`` file.

    Attributes
    ----------
    path : str
    format : {"csv", "parquet"}
    columns : list of str
        The header's names (refused when one repeats).

    Raises
    ------
    InputError
        The file does not exist, is a folder, or is not a readable table:
        two columns with one name, a CSV that is not UTF-8 (byte offset and
        line of the first bad byte), malformed CSV or Parquet.
    ParameterError
        The extension is neither ``.csv`` nor ``.parquet``.
    """

    def __init__(self, path):
        self.path = check_records_path(path)
        self.format = records_format(self.path)
        self._parquet = None
        if self.format == "parquet":
            import pyarrow.parquet as pq

            try:
                self._parquet = pq.ParquetFile(self.path)
                self.columns = list(self._parquet.schema_arrow.names)
            except (OSError, ValueError) as exc:
                raise self._parquet_error(exc) from None
            _refuse_duplicates(self.columns, self.path)
        else:
            try:
                self.columns = _csv_header(self.path)
            except UnicodeDecodeError:
                raise _not_utf8(self.path) from None
            except csv.Error as exc:
                raise InputError(f"malformed CSV: {exc}", source=self.path) from None
            # pandas renames a repeated name ("title" -> "title.1")
            _refuse_duplicates(self.columns, self.path, csv=True)

    def _parquet_error(self, exc):
        return InputError(f"cannot read Parquet: {exc}", source=self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Close the Parquet file (nothing to do for a CSV)."""
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None

    @property
    def num_rows(self):
        """Rows of a Parquet file (from its footer); None for a CSV."""
        if self._parquet is None:
            return None
        return self._parquet.metadata.num_rows

    def arrow_type(self, column):
        """The Arrow type of a Parquet column; ``None`` for a CSV (text)."""
        if self._parquet is None:
            return None
        schema = self._parquet.schema_arrow
        if column not in schema.names:
            raise InputError(
                f"the id column {column!r} is not in the input (columns: "
                f"{schema.names[:10]})",
                source=self.path,
            )
        return schema.field(column).type

    def fingerprint(self):
        """SHA-256 of the file's bytes and its number of records, in one pass.

        The CSV's records are counted as its bytes are hashed
        (:class:`CsvRecordCounter`), a Parquet file's come from its footer.
        """
        if self._parquet is not None:
            return file_sha256(self.path), self.num_rows
        counter = CsvRecordCounter()
        return file_sha256(self.path, on_block=counter), counter.records

    def chunks(self, chunk_size, *, text_columns=()):
        """Yield the records as DataFrames of ``chunk_size`` rows (see iter_records)."""
        if self._parquet is not None:
            try:
                for batch in self._parquet.iter_batches(batch_size=chunk_size):
                    yield batch.to_pandas()
            except (OSError, ValueError) as exc:
                if isinstance(exc, InputError):
                    raise
                raise self._parquet_error(exc) from None
            return
        if os.path.getsize(self.path) == 0:
            return
        try:
            reader = pd.read_csv(
                self.path,
                chunksize=chunk_size,
                encoding="utf-8",
                **_csv_kwargs(text_columns),
            )
            with reader:
                for chunk in reader:
                    yield chunk.reset_index(drop=True)
        except pd.errors.EmptyDataError:
            return
        except UnicodeDecodeError:
            raise _not_utf8(self.path) from None
        except (pd.errors.ParserError, csv.Error) as exc:
            raise InputError(f"malformed CSV: {exc}", source=self.path) from None


def iter_records(path, chunk_size, *, text_columns=()):
    """Yield the records of a CSV or Parquet file as DataFrames of ``chunk_size``.

    Parameters
    ----------
    path : str or path
        A ``.csv`` (UTF-8, header row) or ``.parquet`` file.
    chunk_size : int
        Rows per chunk; the last chunk may be shorter.
    text_columns : sequence of str, default=()
        CSV columns read as text as they are (ids, paths, titles): no
        number parsing, and only an empty cell is missing.

    Yields
    ------
    chunk : DataFrame
        With a fresh ``RangeIndex``. A file with no rows (a 0-byte file or a
        header alone) yields nothing.

    Raises
    ------
    InputError
        For a file that is not a readable table: two columns with one name
        (CSV or Parquet), a CSV that is not UTF-8 (the message gives the
        byte offset and line of the first bad byte), malformed CSV or
        Parquet.
    """
    with RecordsTable(path) as table:
        yield from table.chunks(chunk_size, text_columns=text_columns)


def read_records(path, *, text_columns=()):
    """Read a whole CSV or Parquet records file into one DataFrame.

    Parameters
    ----------
    path : str or path
        A ``.csv`` (UTF-8, header row) or ``.parquet`` file.
    text_columns : sequence of str, default=()
        CSV columns read as text as they are (see :func:`iter_records`).

    Returns
    -------
    frame : DataFrame
        Every record, with a ``RangeIndex`` (row 0 is the first record after
        the header). A file with no rows gives a frame of its columns.
    """
    with RecordsTable(path) as table:
        chunks = list(table.chunks(100_000, text_columns=text_columns))
        columns = table.columns
    if not chunks:
        return pd.DataFrame(columns=columns or list(text_columns))
    return pd.concat(chunks, ignore_index=True)


def count_records(path):
    """Number of records in a file, or None when a Parquet footer is unreadable.

    A CSV's records are counted without parsing them, quotes respected: a
    line break inside a quoted cell does not start a record.
    """
    path = check_records_path(path)
    if records_format(path) == "parquet":
        import pyarrow.parquet as pq

        try:
            with pq.ParquetFile(path) as parquet:
                return parquet.metadata.num_rows
        except (OSError, ValueError):
            return None
    counter = CsvRecordCounter()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            counter(block)
    return counter.records
