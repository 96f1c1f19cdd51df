"""The prediction log: one row per predicted record in an SQLite file, appended to by the service
(`PredictionWriter`) and read by `make drift` (`read_recent`).

Numeric inputs and probabilities are stored packed (float64 BLOBs, in the order the `models`
table gives for that model version), category and text inputs as JSON in `texts`; of a picture,
its measures (`LoggedModel.of`), never its pixels. The file is in
WAL mode: readers never block the writer, and several workers take turns (up to `busy_timeout`).
Requests only queue their rows; a background thread writes them once a second in one transaction.
Nothing here fails a request: rows that cannot be written are dropped, reported through
`on_drop(reason, count)` and logged once per outage. At its size cap the log deletes its oldest
rows (a ring buffer, `on_evict`); a log deleted or replaced is started again at the next flush and
the rows it held are counted as lost (several workers each start again once they closed the old
one: restart them after deleting the log by hand).

Personal data: the inputs are whatever clients send (health data for the default model). Keep the
file on the service's own disk, only as long as the drift job needs it (`retention_days`), never
commit it, and turn logging off (API_PREDICTION_LOG_ENABLED=false) where you have no basis for it.

Longer than most modules: the writer and the reader share the file's schema and its packing,
which must change together.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..bundle import BundleMetadata

logger = logging.getLogger(__name__)

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS models (version INTEGER PRIMARY KEY, features TEXT NOT NULL,
        numeric INTEGER NOT NULL, classes TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS predictions (id INTEGER PRIMARY KEY, logged_at REAL NOT NULL,
        request_id TEXT NOT NULL, position INTEGER NOT NULL, model_version INTEGER NOT NULL,
        inputs BLOB NOT NULL, texts TEXT, label TEXT NOT NULL, probabilities BLOB NOT NULL)""",
)
# A flush is one INSERT of up to 4,000 rows (32,000 values, under SQLite's default limit), not
# `executemany`: each statement runs without the GIL, which the thread answering requests must then
# take back (measured at 2,500 rows a second: 100 statements a second cost it 20%, one 3%).
COLUMNS = "logged_at, request_id, position, model_version, inputs, texts, label, probabilities"
ROW_VALUES = 8
ROWS_PER_INSERT = 4000


def insert_statement(rows: int) -> str:
    row = "(" + ", ".join("?" * ROW_VALUES) + ")"
    return f"INSERT INTO predictions ({COLUMNS}) VALUES " + ", ".join([row] * rows)


FLUSH_SECONDS = 1.0
# The metric's `reason` label ("deleted": the log they were written to was deleted or replaced).
DROP_REASONS = ("full", "locked", "unwritable", "queue_full", "deleted", "error")
# At the size cap, a flush deletes at least this share of the log's rows, oldest first.
EVICTED_SHARE = 0.1
JOURNAL = ("-wal", "-shm")
# SQLite's error names -> the reason a drop is counted under.
REASONS = {
    "SQLITE_FULL": "full",
    "SQLITE_BUSY": "locked",
    "SQLITE_LOCKED": "locked",
    "SQLITE_READONLY": "unwritable",
    "SQLITE_CANTOPEN": "unwritable",
    "SQLITE_PERM": "unwritable",
}


@dataclass(frozen=True)
class LoggedModel:
    """The order of the served model's inputs and probabilities."""

    version: int
    features: tuple[str, ...]
    classes: tuple[str, ...]
    numeric: int | None = None  # how many of the features, first in order, are numbers; None: all

    @property
    def numeric_count(self) -> int:
        return len(self.features) if self.numeric is None else self.numeric

    @classmethod
    def of(cls, metadata: BundleMetadata) -> LoggedModel:
        """What the log keeps of the served model's records: their features' values, or of a
        picture its measures (numbers all)."""
        if metadata.image_feature is None:
            numeric = len(metadata.numeric_features)
            return cls(metadata.identity.version, tuple(metadata.feature_names),
                       tuple(metadata.classes), numeric)  # fmt: skip
        from .pictures import MEASURES  # the image task's module

        return cls(metadata.identity.version, MEASURES, tuple(metadata.classes))


@dataclass(frozen=True)
class LoggedPrediction:
    logged_at: float  # seconds since the epoch
    request_id: str
    position: int  # the record's index in its request
    model_version: int
    inputs: Mapping[str, float | str]  # as the client sent them
    label: str
    probabilities: Mapping[str, float]


def reason_of(error: Exception) -> str:
    name = getattr(error, "sqlite_errorname", "")
    if name.startswith("SQLITE_IOERR") or isinstance(error, OSError):
        return "unwritable"
    return REASONS.get(name, "error")


class PredictionWriter:
    """Appends one model's predictions to the log from a background thread; `submit` never
    blocks nor raises."""

    def __init__(
        self,
        path: Path,
        model: LoggedModel,
        *,
        queue_size: int = 10_000,
        busy_timeout: float = 5.0,
        flush_seconds: float = FLUSH_SECONDS,
        max_bytes: int | None = None,
        retention_days: float | None = None,
        on_write: Callable[[int], None] | None = None,
        on_drop: Callable[[str, int], None] | None = None,
        on_evict: Callable[[int], None] | None = None,
    ) -> None:
        self.path = path
        self.model = model
        self.queue_size = queue_size
        self.busy_timeout = busy_timeout
        self.flush_seconds = flush_seconds
        self.max_bytes = max_bytes
        self.retention_days = retention_days
        self.on_write = on_write or (lambda count: None)
        self.on_drop = on_drop or (lambda reason, count: None)
        self.on_evict = on_evict or (lambda count: None)
        self._file: tuple[int, int] | None = None  # (device, inode) of the file written to
        self._journal: dict[str, tuple[int, int] | None] = {}  # and of its WAL files
        self._rows_in_file = 0  # rows this writer wrote to that file
        self._inputs = struct.Struct(f"<{model.numeric_count}d")
        self._probabilities = struct.Struct(f"<{len(model.classes)}d")
        self._pending: collections.deque[list] = collections.deque()  # one list a request
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._failing: str | None = None  # the reason of the outage under way, if any

    def start(self) -> None:
        self._thread.start()

    def submit(
        self, request_id: str, records: Sequence[tuple[Sequence[Any], str, Sequence[float]]]
    ) -> None:
        """Queue one request's (inputs in feature order, label, probabilities in class order)."""
        if len(self._pending) >= self.queue_size:
            self.drop("queue_full", len(records), "the writer cannot keep up")
            return
        now, version = time.time(), self.model.version
        pack_inputs, pack_probabilities = self._inputs.pack, self._probabilities.pack
        count = self.model.numeric_count
        strings = count < len(self.model.features)
        values: list = []  # as the INSERT binds them
        for position, (inputs, label, probabilities) in enumerate(records):
            values += (
                now,
                request_id,
                position,
                version,
                pack_inputs(*inputs[:count]) if strings else pack_inputs(*inputs),
                json.dumps(inputs[count:], ensure_ascii=False) if strings else None,
                label,
                pack_probabilities(*probabilities),
            )
        self._pending.append(values)

    def close(self) -> None:
        """Write what is queued, then stop the thread (within 10 s)."""
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(10.0)

    def drop(self, reason: str, count: int, detail: str) -> None:
        self.on_drop(reason, count)
        if self._failing != reason:  # one warning per outage, not one per request
            logger.warning(
                "prediction log %s: %s (%s); dropping predictions until it can write again",
                self.path,
                reason,
                detail,
            )
            self._failing = reason

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        while True:
            stopping = self._stopping
            self._wake.wait(self.flush_seconds)
            values: list = []
            while self._pending:
                values += self._pending.popleft()
            if values:
                connection = self._write(connection, values)
            if stopping:
                break
        if connection is not None:
            connection.close()

    def _write(
        self, connection: sqlite3.Connection | None, values: list
    ) -> sqlite3.Connection | None:
        """Write the rows in one transaction; the connection to use next time (None: reconnect)."""
        rows = len(values) // ROW_VALUES
        try:
            if connection is not None and not self._same_file():
                connection.close()
                connection = None
                self._remove_stale_journal()
            connection = connection or self._connect()
            try:
                self._insert(connection, values)
            except sqlite3.Error as error:
                if reason_of(error) != "full" or not self.max_bytes:
                    raise
                self._evict(connection, rows)  # the size cap: make room, then once more
                self._insert(connection, values)
        except (sqlite3.Error, OSError) as error:
            self.drop(reason_of(error), rows, str(error))
            if connection is not None:
                connection.close()
            return None  # the folder or the disk may be back next time
        self.on_write(rows)
        self._rows_in_file += rows
        self._journal = {suffix: identity(self._sibling(suffix)) for suffix in JOURNAL}
        if self._failing:
            logger.info("prediction log %s: writing again", self.path)
            self._failing = None
        return connection

    def _insert(self, connection: sqlite3.Connection, values: list) -> None:
        bindable = connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // ROW_VALUES
        step = min(ROWS_PER_INSERT, bindable) * ROW_VALUES
        with connection:
            for start in range(0, len(values), step):
                chunk = values[start : start + step]
                connection.execute(insert_statement(len(chunk) // ROW_VALUES), chunk)

    def _evict(self, connection: sqlite3.Connection, incoming: int) -> None:
        """Delete the oldest rows, a tenth of the log and at least `incoming`: the next writes
        reuse their pages, so the file stays under its cap."""
        with connection:
            [(count,)] = connection.execute("SELECT count(*) FROM predictions").fetchall()
            evicted = min(count, max(incoming, int(count * EVICTED_SHARE)))
            connection.execute(
                "DELETE FROM predictions WHERE id IN "
                "(SELECT id FROM predictions ORDER BY id LIMIT ?)",
                (evicted,),
            )
        self._rows_in_file = max(0, self._rows_in_file - evicted)
        self.on_evict(evicted)
        logger.info("prediction log %s: at its size cap, deleted the %d oldest", self.path, evicted)

    def _same_file(self) -> bool:
        """Whether the log is still the file this writer opened; if not, count what it wrote to
        the old one as lost."""
        if identity(self.path) == self._file:
            return True
        lost, self._rows_in_file = self._rows_in_file, 0
        self.on_drop("deleted", lost)
        logger.warning(
            "prediction log %s was deleted or replaced: %d predictions written to it since the "
            "service opened it are gone; starting a new log",
            self.path,
            lost,
        )
        return False

    def _sibling(self, suffix: str) -> Path:
        return self.path.with_name(self.path.name + suffix)

    def _remove_stale_journal(self) -> None:
        """Delete this writer's own WAL files (by inode) of the log that went away: SQLite
        leaves them, and would replay them into a new log at that path (the old rows came back)."""
        for suffix, known in self._journal.items():
            if known is not None and identity(self._sibling(suffix)) == known:
                self._sibling(suffix).unlink(missing_ok=True)
        self._journal = {}

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Each flush's INSERT has its own length, and a prepared one takes a few MB: the default
        # cache of 128 statements grew the service by 40 MB in a 3-minute `make bench`.
        connection = sqlite3.connect(self.path, timeout=self.busy_timeout, cached_statements=2)
        try:
            self._use_wal(connection)
            connection.execute("PRAGMA synchronous=NORMAL")  # in WAL mode: durable at checkpoints
            if self.max_bytes:
                page_size = connection.execute("PRAGMA page_size").fetchone()[0]
                connection.execute(f"PRAGMA max_page_count={max(self.max_bytes // page_size, 1)}")
            with connection:
                for statement in SCHEMA:
                    connection.execute(statement)
                columns = {row[1] for row in connection.execute("PRAGMA table_info(predictions)")}
                if "texts" not in columns:  # written by an earlier version of the service
                    raise sqlite3.DatabaseError(
                        "it was written by an earlier version of the service: move it away"
                    )
                model = self.model
                features, classes = json.dumps(model.features), json.dumps(model.classes)
                connection.execute(
                    "INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?)",
                    (model.version, features, model.numeric_count, classes),
                )
                if self.retention_days:
                    cutoff = time.time() - self.retention_days * 86_400
                    connection.execute("DELETE FROM predictions WHERE logged_at < ?", (cutoff,))
        except sqlite3.Error:
            connection.close()
            raise
        self._file = identity(self.path)
        return connection

    def _use_wal(self, connection: sqlite3.Connection) -> None:
        """WAL mode, waiting up to `busy_timeout` for its lock: SQLite does not wait for this one,
        and two workers opening a new log at once lost a flush one time in two (measured)."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as error:
                if reason_of(error) != "locked" or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)


def identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at `path`, if any."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_dev, status.st_ino


class UnreadableLogError(Exception):
    """Damaged, another kind of file, or written by another version of the service."""


def read_recent(path: Path, limit: int) -> list[LoggedPrediction]:
    """The `limit` most recent predictions of the log at `path`, oldest first."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
            if not {"models", "predictions"} <= tables:
                return []  # created by a writer that has not written yet
            models = {
                version: (json.loads(features), numeric, json.loads(classes))
                for version, features, numeric, classes in connection.execute(
                    "SELECT version, features, numeric, classes FROM models"
                )
            }
            rows = connection.execute(
                f"SELECT {COLUMNS} FROM predictions ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
    except (sqlite3.Error, ValueError) as error:  # ValueError: JSON or columns not ours
        raise UnreadableLogError(str(error)) from None
    found = []
    for when, request_id, position, version, inputs, texts, label, probabilities in reversed(rows):
        try:
            features, numeric, classes = models[version]
            numbers, strings = unpack(inputs), json.loads(texts) if texts else []
            if len(numbers) != numeric:
                raise ValueError("its numbers are not the model's numeric features")
            values = [*numbers, *strings]
            found.append(
                LoggedPrediction(
                    logged_at=when,
                    request_id=request_id,
                    position=position,
                    model_version=version,
                    inputs=dict(zip(features, values, strict=True)),
                    label=label,
                    probabilities=dict(zip(classes, unpack(probabilities), strict=True)),
                )
            )
        except (KeyError, TypeError, ValueError, struct.error):
            raise UnreadableLogError(
                f"its row of request {request_id} is not in the format this version writes"
            ) from None
    return found


def unpack(packed: bytes) -> tuple[float, ...]:
    return struct.unpack(f"<{len(packed) // 8}d", packed)


def shown(predictions: Sequence[LoggedPrediction]) -> str:
    """`N predictions from <first> to <last> UTC`."""
    if not predictions:
        return "no predictions"
    first, last = (
        datetime.fromtimestamp(p.logged_at, UTC).strftime("%Y-%m-%d %H:%M")
        for p in (predictions[0], predictions[-1])
    )
    return f"{len(predictions)} predictions from {first} to {last} UTC"
