"""The write engine: from `RecordWrite`s to one `WriteResult` each, within the caller's deadline.

1. Group by (table, operation, impersonated caller); order groups so lookup targets are written before the rows
   pointing at them; a key repeated within a group goes to a later round (last write wins, never two writes of one
   row in one request).
2. Prepare each record (targets.py): key URL, `@odata.bind`s; keys with characters that break key URLs or body
   references (keys.needs_id_addressing) are resolved to primary ids with `$filter` first (for a lookup: a missing
   target is a DEPENDENCY; for the record: an upsert creates it with a new id, an update is PERMANENT, a delete is
   done).
3. Send: bulk actions in chunks of `bulk_chunk_size` in parallel (adaptive concurrency), else `$batch` of
   `batch_size` with `Prefer: odata.continue-on-error`.
4. A failed bulk chunk (standard tables roll the whole request back, bulk-operations.md) is isolated: a chunk too
   large is halved; otherwise it is split into ten smaller bulk requests, recursively, and the small pieces that
   still fail are sent as `$batch` with continue-on-error, so every good record lands and each bad one gets its
   own Dataverse code and message. A table refusing the bulk action falls back to `$batch` for
   good. Throttled or failed parts of a `$batch` are re-sent after their Retry-After while the deadline allows.
5. Outcomes: errors.classify (WRITTEN / PERMANENT / DEPENDENCY / TRANSIENT); work not started by the deadline,
   and anything cut short by it, is TRANSIENT.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import zip_longest
from typing import TYPE_CHECKING, TypeVar

from shared.dataverse.batch import (
    MAX_BATCH_OPERATIONS,
    BatchFormatError,
    BatchResponsePart,
    decode_batch_response,
    encode_batch,
)
from shared.dataverse.errors import (
    DUPLICATE_CODES,
    NOT_FOUND_CODES,
    DataverseError,
    DataverseRequestFailed,
    classify,
    parse_error,
)
from shared.dataverse.keys import (
    InvalidKey,
    any_of_filter,
    needs_id_addressing,
    normalized_key,
    record_path,
    record_reference,
)
from shared.dataverse.metadata import MetadataUnavailable, TableMetadata
from shared.dataverse.pipeline import request_id_of
from shared.dataverse.policies import EnvironmentUnavailable
from shared.dataverse.retry import backoff_seconds, parse_retry_after
from shared.dataverse.targets import BULK_ACTIONS, Prepared, assign_create_id, bind_property
from shared.sync.ports import KeyValue, Operation, Outcome, RecordWrite, WriteResult

if TYPE_CHECKING:
    from shared.dataverse.client import DataverseClient

log = logging.getLogger("shared.dataverse")
T = TypeVar("T")
_JITTER = random.Random()  # noqa: S311 - jitter, not security

BULK_REFUSED_PHRASES = (
    "not supported",
    "not enabled",
    "not implemented",
    "does not support",
    "not available",
    "resource not found for the segment",
)


@dataclass(frozen=True)
class GroupKey:
    table: str
    operation: Operation
    caller: str | None


class WriteRun:
    """One `write` call. Results are filled from worker threads under a lock."""

    def __init__(self, client: DataverseClient, writes: Sequence[RecordWrite], deadline: float) -> None:
        self.client = client
        self.writes = list(writes)
        self.deadline = deadline
        self.results: list[WriteResult | None] = [None] * len(self.writes)
        self._lock = threading.Lock()
        # Two pools: chunks run on the first; a failed chunk's isolation batches on the second (a worker waiting on
        # its own pool could deadlock it). The adaptive limiter, not the pools, bounds requests in flight.
        self._pools: list[ThreadPoolExecutor] = []
        self._depth = threading.local()

    # --- entry -------------------------------------------------------------------------------------------------

    def execute(self) -> list[WriteResult]:
        started = time.monotonic()
        if self.writes:
            try:
                self.client.check_token()
                self._execute_groups()
            except EnvironmentUnavailable as exc:
                self._fill_remaining(f"environment {self.client.name} unavailable: {exc}")
            except Exception as exc:  # a bug must not lose records: they come back TRANSIENT, the log has the cause
                log.exception("unexpected failure while writing to %s", self.client.name)
                self._fill_remaining(f"unexpected failure while writing to {self.client.name}: {type(exc).__name__}")
        self._fill_remaining("not attempted: the call's time budget was spent")
        results = [r for r in self.results if r is not None]
        self._log_summary(results, time.monotonic() - started)
        return results

    def _execute_groups(self) -> None:
        workers = max(1, self.client.options.max_parallelism)
        prefix = f"dataverse-{self.client.name}"
        with (
            ThreadPoolExecutor(workers, thread_name_prefix=f"{prefix}-chunks") as chunks,
            ThreadPoolExecutor(workers, thread_name_prefix=f"{prefix}-isolation") as isolation,
        ):
            self._pools = [chunks, isolation]
            try:
                for key, indexes in order_groups(self.writes):
                    if time.monotonic() >= self.deadline:
                        return
                    self._run_group(key, indexes)
            finally:
                self._pools = []

    # --- groups ------------------------------------------------------------------------------------------------

    def _run_group(self, key: GroupKey, indexes: list[int]) -> None:
        table = self._table_or_settle(key.table, indexes)
        if table is None:
            return
        for round_indexes in split_repeated_keys(indexes, self.writes):
            prepared = self._prepare_all(table, round_indexes)
            if not prepared:
                continue
            if key.operation is Operation.DELETE or table.bulk is False:
                self._batch_chunk(prepared)
            else:
                self._run_bulk(prepared)

    def _table_or_settle(self, table: str, indexes: list[int]) -> TableMetadata | None:
        configured = self.client.config.tables
        if table not in configured:
            for i in indexes:
                self._settle_permanent(i, f"table {table!r} is not configured for environment {self.client.name}")
            return None
        try:
            return self.client.metadata.get(table, self.deadline)
        except MetadataUnavailable as exc:
            self._settle_all(indexes, exc.error, prefix=f"table {table!r}: ")
            return None

    # --- preparation -------------------------------------------------------------------------------------------

    def _prepare_all(self, table: TableMetadata, indexes: list[int]) -> list[Prepared]:
        prepared: list[Prepared] = []
        for i in indexes:
            item = self._prepare(table, i)
            if item is not None:
                prepared.append(item)
        prepared = self._resolve_lookups(prepared)
        return self._resolve_own_keys(prepared)

    def _prepare(self, table: TableMetadata, index: int) -> Prepared | None:
        write = self.writes[index]
        item = Prepared(index, write, table)
        try:
            self._check_key(write, table)
            if write.operation is Operation.CREATE:
                assign_create_id(item)
            elif set(write.key) == {table.primary_id}:
                item.record_id = str(write.key[table.primary_id]).lower()
                record_path(table.entity_set, write.key, primary_id=table.primary_id)  # validates the GUID
            elif not needs_id_addressing(write.key):
                record_path(table.entity_set, write.key)  # validates the literals
                item.by_alternate_key = True
            for navigation, lookup in write.lookups.items():
                target = self.client.metadata.get(lookup.table, self.deadline)
                if not needs_id_addressing(lookup.key):
                    item.binds[bind_property(navigation)] = "/" + record_reference(
                        target.entity_set, lookup.key, primary_id=target.primary_id
                    )
        except InvalidKey as exc:
            self._settle_permanent(index, str(exc))
            return None
        except MetadataUnavailable as exc:
            self._settle(item, exc.error, prefix=f"lookup table {exc.table!r}: ")
            return None
        return item

    def _check_key(self, write: RecordWrite, table: TableMetadata) -> None:
        if write.operation is Operation.CREATE and not write.key:
            return
        if not write.key:
            raise InvalidKey(f"{write.operation} of a {table.logical_name} row needs a key")
        columns = set(write.key)
        if columns == {table.primary_id} or write.operation is Operation.CREATE or not table.alternate_keys:
            return
        if not any(columns == set(key) for key in table.alternate_keys):
            # The message Dataverse gives for such a key URL (use-alternate-key-reference-record).
            raise InvalidKey(
                f"The key in the request URI is not valid for resource '{table.odata_type}'. Ensure that the names"
                " and number of key properties match the declared or alternate key properties for the resource"
                f" '{table.odata_type}'."
            )

    def _resolve_lookups(self, prepared: list[Prepared]) -> list[Prepared]:
        """Bind lookups whose key needs id addressing by the target's primary id, found with `$filter`."""
        wanted: dict[str, list[dict[str, KeyValue]]] = {}
        for item in prepared:
            for lookup in item.write.lookups.values():
                if needs_id_addressing(lookup.key):
                    wanted.setdefault(lookup.table, []).append(dict(lookup.key))
        if not wanted:
            return prepared
        found: dict[str, dict[tuple[tuple[str, object], ...], str]] = {}
        failures: dict[str, DataverseError] = {}
        for table_name, keys in wanted.items():
            try:
                found[table_name] = self._resolve_ids(self.client.metadata.get(table_name, self.deadline), keys)
            except (DataverseRequestFailed, MetadataUnavailable) as exc:
                failures[table_name] = exc.error
        kept: list[Prepared] = []
        for item in prepared:
            if self._bind_resolved(item, found, failures):
                kept.append(item)
        return kept

    def _bind_resolved(
        self,
        item: Prepared,
        found: dict[str, dict[tuple[tuple[str, object], ...], str]],
        failures: dict[str, DataverseError],
    ) -> bool:
        for navigation, lookup in item.write.lookups.items():
            if not needs_id_addressing(lookup.key):
                continue
            if lookup.table in failures:
                self._settle(item, failures[lookup.table], prefix=f"resolving lookup {navigation}: ")
                return False
            target_id = found[lookup.table].get(normalized_key(lookup.key))
            if target_id is None:
                self._set(
                    item.index,
                    WriteResult(
                        item.write.ref,
                        Outcome.DEPENDENCY,
                        404,
                        None,
                        f"lookup {navigation}: no {lookup.table} row has the key {dict(lookup.key)!r}",
                    ),
                )
                return False
            target = self.client.metadata.get(lookup.table, self.deadline)
            item.binds[bind_property(navigation)] = f"/{target.entity_set}({target_id})"
        return True

    def _resolve_own_keys(self, prepared: list[Prepared]) -> list[Prepared]:
        """Rows whose key breaks URLs: find their ids with `$filter`, then address them by id (keys.py)."""
        pending = [p for p in prepared if p.record_id is None and not p.by_alternate_key]
        if not pending:
            return prepared
        try:
            found = self._resolve_ids(pending[0].table, [dict(p.write.key) for p in pending])
        except DataverseRequestFailed as exc:
            for item in pending:
                self._settle(item, exc.error, prefix="resolving the key: ")
            return [p for p in prepared if p not in pending]
        kept = [p for p in prepared if p not in pending]
        for item in pending:
            record_id = found.get(normalized_key(item.write.key))
            if record_id is not None:
                item.record_id = record_id
                kept.append(item)
            elif item.operation is Operation.UPSERT:
                assign_create_id(item)
                item.new_row = True
                kept.append(item)
            elif item.operation is Operation.DELETE:
                self._set(item.index, WriteResult(item.write.ref, Outcome.WRITTEN, 204, None, "row did not exist"))
            else:
                self._settle_permanent(
                    item.index, f"{item.table.logical_name} with key {dict(item.write.key)!r} does not exist", 404
                )
        return kept

    def _resolve_ids(
        self, table: TableMetadata, keys: list[dict[str, KeyValue]]
    ) -> dict[tuple[tuple[str, object], ...], str]:
        columns = sorted({column for key in keys for column in key})
        select = ",".join(dict.fromkeys([table.primary_id, *columns]))
        found: dict[tuple[tuple[str, object], ...], str] = {}
        size = max(1, self.client.options.resolve_batch_size)
        for start in range(0, len(keys), size):
            chunk = keys[start : start + size]
            params = {"$select": select, "$filter": any_of_filter(list(chunk))}
            for page in self.client.pages(table.entity_set, params, deadline=self.deadline):
                for row in page:
                    key = {column: row.get(column) for column in chunk[0]}
                    found[normalized_key(key)] = str(row[table.primary_id]).lower()
        return found

    # --- bulk --------------------------------------------------------------------------------------------------

    def _run_bulk(self, prepared: list[Prepared]) -> None:
        size = max(1, self.client.options.bulk_chunk_size)
        self._parallel(self._bulk_chunk, [prepared[i : i + size] for i in range(0, len(prepared), size)])

    def _bulk_chunk(self, chunk: list[Prepared], *, ambiguous: bool = False) -> None:
        if self._spent(chunk):
            return
        table, operation = chunk[0].table, chunk[0].operation
        if table.bulk is False:  # another chunk learned it meanwhile
            self._batch_chunk(chunk)
            return
        action = BULK_ACTIONS[operation]
        response = self.client.request(
            "POST",
            f"{table.entity_set}/Microsoft.Dynamics.CRM.{action}",
            body={"Targets": [item.bulk_target() for item in chunk]},
            headers=self._write_headers(chunk[0]),
            deadline=self.deadline,
            kind=action,
        )
        if response.ok:
            for item in chunk:
                self._set(
                    item.index,
                    WriteResult(item.write.ref, Outcome.WRITTEN, response.status, request_id=response.request_id),
                )
            return
        error = response.error
        assert error is not None
        ambiguous = ambiguous or response.maybe_delivered_before
        if bulk_refused(error, action):
            log.info("%s: %s refuses %s; using $batch from now on", self.client.name, table.logical_name, action)
            self.client.metadata.mark_no_bulk(table.logical_name)
            self._batch_chunk(chunk)
        elif error.is_transient or error.status == 401:
            self._settle_all_items(chunk, error)
        elif error.too_large and len(chunk) > 1:
            half = len(chunk) // 2
            self._bulk_chunk(chunk[:half], ambiguous=ambiguous)
            self._bulk_chunk(chunk[half:], ambiguous=ambiguous)
        elif len(chunk) == 1:
            self._settle(chunk[0], error, ambiguous=ambiguous)
        else:
            log.info(
                "%s: %s of %d %s rows failed (%s %s); isolating the bad records",
                self.client.name,
                action,
                len(chunk),
                table.logical_name,
                error.status,
                error.code,
            )
            self._isolate(chunk, ambiguous)

    def _isolate(self, chunk: list[Prepared], ambiguous: bool) -> None:
        """Find the bad records of a failed bulk chunk (standard tables roll back the whole request): re-send it as
        ten smaller bulk requests; pieces that fail again are split the same way down to `isolation_leaf_size`,
        then sent as `$batch` with continue-on-error, which gives each record its own result. Bulk costs several
        times less per record than `$batch` (bulk-operations.md), so a rare bad record costs a few small requests
        instead of re-sending the whole chunk record by record."""
        leaf = max(1, self.client.options.isolation_leaf_size)
        if len(chunk) <= leaf:
            self._batch_chunk(chunk, ambiguous=ambiguous)
            return
        size = max(leaf, -(-len(chunk) // 10))
        parts = [chunk[start : start + size] for start in range(0, len(chunk), size)]
        self._parallel(lambda part: self._bulk_chunk(part, ambiguous=ambiguous), parts)

    # --- $batch ------------------------------------------------------------------------------------------------

    def _batch_chunk(self, items: list[Prepared], *, ambiguous: bool = False) -> None:
        size = max(1, min(MAX_BATCH_OPERATIONS, self.client.options.batch_size))
        batches = [items[start : start + size] for start in range(0, len(items), size)]
        self._parallel(lambda batch: self._batch_rounds(batch, ambiguous), batches)

    def _batch_rounds(self, pending: list[Prepared], ambiguous: bool) -> None:
        """Send a `$batch`; re-send the parts that failed transiently (429/5xx) after their Retry-After."""
        rounds = 0
        while pending:
            if self._spent(pending):
                return
            retry, wait, last_error = self._batch_once(pending, ambiguous)
            if not retry:
                return
            rounds += 1
            budget = self.client.options.retry.max_transient_retries
            if rounds > budget or time.monotonic() + wait >= self.deadline:
                self._settle_all_items(retry, last_error or DataverseError(None, None, "batch part not processed"))
                return
            time.sleep(wait)
            pending = retry
            ambiguous = True

    def _batch_once(
        self, pending: list[Prepared], ambiguous: bool
    ) -> tuple[list[Prepared], float, DataverseError | None]:
        headers = self._write_headers(pending[0])
        body, content_type = encode_batch(
            [item.batch_operation(headers) for item in pending], service_path=self.client.service_path
        )
        response = self.client.request(
            "POST",
            "$batch",
            raw_body=body,
            headers={"Content-Type": content_type, "Prefer": "odata.continue-on-error", **headers},
            deadline=self.deadline,
            kind="$batch",
        )
        ambiguous = ambiguous or response.maybe_delivered_before
        if not response.ok:
            error = response.error
            assert error is not None
            if error.too_large and len(pending) > 1:
                half = len(pending) // 2
                self._batch_rounds(pending[:half], ambiguous)
                self._batch_rounds(pending[half:], ambiguous)
            else:
                self._settle_all_items(pending, error, ambiguous=ambiguous)
            return [], 0.0, None
        try:
            parts = decode_batch_response(response.body, response.headers.get("Content-Type", ""))
        except BatchFormatError as exc:
            self._settle_all_items(pending, DataverseError(None, None, f"unreadable $batch response: {exc}"))
            return [], 0.0, None
        return self._settle_parts(pending, parts, response.request_id, ambiguous)

    def _settle_parts(
        self, pending: list[Prepared], parts: list[BatchResponsePart], batch_request_id: str | None, ambiguous: bool
    ) -> tuple[list[Prepared], float, DataverseError | None]:
        retry: list[Prepared] = []
        wait, last_error = 0.0, None
        for item, part in zip_longest(pending, parts):
            if item is None:
                break
            if part is None:  # Dataverse stopped before this operation
                retry.append(item)
                continue
            request_id = request_id_of(part.headers) or batch_request_id
            if 200 <= part.status < 300:
                self._set(item.index, WriteResult(item.write.ref, Outcome.WRITTEN, part.status, request_id=request_id))
                continue
            error = parse_error(part.status, part.body, request_id)
            if error.is_transient:
                retry.append(item)
                last_error = error
                delay = parse_retry_after(part.headers.get("Retry-After"))
                if part.status == 429:
                    self.client.limiter.on_throttle(delay)
                wait = max(wait, delay if delay is not None else backoff_seconds(0, self.client.options.retry, _JITTER))
            else:
                self._settle(item, error, ambiguous=ambiguous)
        return retry, wait, last_error

    # --- outcomes ----------------------------------------------------------------------------------------------

    def _settle(self, item: Prepared, error: DataverseError, *, prefix: str = "", ambiguous: bool = False) -> None:
        operation = item.operation
        if operation is Operation.DELETE and (error.status == 404 or error.code_in(NOT_FOUND_CODES)):
            self._set(item.index, WriteResult(item.write.ref, Outcome.WRITTEN, error.status, None, "row did not exist"))
            return
        if operation is Operation.CREATE and ambiguous and error.code_in(DUPLICATE_CODES) and self._exists(item):
            # Our earlier attempt created it (its id was assigned here, nobody else knows it).
            self._set(
                item.index,
                WriteResult(item.write.ref, Outcome.WRITTEN, error.status, None, "created by an earlier attempt"),
            )
            return
        outcome = classify(
            error,
            lookup_tables=item.lookup_tables,
            own_table=item.table.logical_name,
            upsert=operation is Operation.UPSERT,
        )
        if item.new_row and error.code_in(DUPLICATE_CODES):
            # The id path found no row, but another writer created one with this key since: the next attempt
            # resolves it and updates it.
            outcome, prefix = Outcome.TRANSIENT, "created concurrently by another writer, retry: "
        self._set(item.index, _result(item.write.ref, outcome, error, prefix))

    def _exists(self, item: Prepared) -> bool:
        """Whether the row a create addressed by its client-assigned id is there."""
        response = self.client.request("GET", f"{item.path()}?$select={item.table.primary_id}", deadline=self.deadline)
        return response.ok

    def _settle_all_items(self, items: Iterable[Prepared], error: DataverseError, *, ambiguous: bool = False) -> None:
        for item in items:
            self._settle(item, error, ambiguous=ambiguous)

    def _settle_all(self, indexes: Iterable[int], error: DataverseError, *, prefix: str = "") -> None:
        outcome = Outcome.PERMANENT if error.status == 404 else classify(error)
        for i in indexes:
            self._set(i, _result(self.writes[i].ref, outcome, error, prefix))

    def _settle_permanent(self, index: int, message: str, status: int | None = None) -> None:
        self._set(index, WriteResult(self.writes[index].ref, Outcome.PERMANENT, status, None, message))

    def _set(self, index: int, result: WriteResult) -> None:
        with self._lock:
            if self.results[index] is None:
                self.results[index] = result

    def _fill_remaining(self, message: str) -> None:
        with self._lock:
            for i, result in enumerate(self.results):
                if result is None:
                    self.results[i] = WriteResult(self.writes[i].ref, Outcome.TRANSIENT, None, None, message)

    def _spent(self, items: list[Prepared]) -> bool:
        if time.monotonic() < self.deadline:
            return False
        for item in items:
            self._set(
                item.index,
                WriteResult(
                    item.write.ref, Outcome.TRANSIENT, None, None, "not started: the call's time budget was spent"
                ),
            )
        return True

    # --- helpers -----------------------------------------------------------------------------------------------

    def _write_headers(self, item: Prepared) -> dict[str, str]:
        headers = self.client.options.write_headers()
        if item.write.caller_object_id:
            headers["CallerObjectId"] = item.write.caller_object_id  # impersonate-another-user-web-api
        return headers

    def _parallel(self, work: Callable[[T], None], items: list[T]) -> None:
        """Run items on the pool of the caller's depth (chunks, then isolation batches); deeper work runs inline."""
        depth = getattr(self._depth, "value", 0)
        if depth >= len(self._pools) or len(items) <= 1:
            for item in items:
                work(item)
            return

        def run(item: T) -> None:
            self._depth.value = depth + 1
            work(item)

        for future in [self._pools[depth].submit(run, item) for item in items]:
            future.result()

    def _log_summary(self, results: list[WriteResult], seconds: float) -> None:
        counts: dict[str, int] = {}
        for result in results:
            counts[result.outcome.value] = counts.get(result.outcome.value, 0) + 1
        log.info(
            "dataverse %s: %d records in %.2f s: %s",
            self.client.name,
            len(results),
            seconds,
            ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing to do",
            extra={
                "event": "dataverse_write",
                "environment": self.client.name,
                "outcomes": counts,
                "seconds": round(seconds, 3),
            },
        )


def bulk_refused(error: DataverseError, action: str) -> bool:
    """The table does not support the bulk action (as opposed to a record failing inside it)."""
    message = error.message.lower()
    return action.lower() in message and any(phrase in message for phrase in BULK_REFUSED_PHRASES)


def order_groups(writes: Sequence[RecordWrite]) -> list[tuple[GroupKey, list[int]]]:
    """Groups in first-appearance order, moved after the groups whose tables their lookups point at."""
    groups: dict[GroupKey, list[int]] = {}
    for index, write in enumerate(writes):
        groups.setdefault(GroupKey(write.table, write.operation, write.caller_object_id), []).append(index)
    keys = list(groups)
    depends = {
        key: {
            other
            for other in keys
            if other.table != key.table
            and other.operation is not Operation.DELETE
            and any(lookup.table == other.table for i in groups[key] for lookup in writes[i].lookups.values())
        }
        for key in keys
    }
    ordered: list[GroupKey] = []
    while len(ordered) < len(keys):
        ready = [k for k in keys if k not in ordered and depends[k] <= set(ordered)]
        ordered.append(ready[0] if ready else next(k for k in keys if k not in ordered))  # a cycle: keep order
    return [(key, groups[key]) for key in ordered]


def split_repeated_keys(indexes: list[int], writes: Sequence[RecordWrite]) -> list[list[int]]:
    """Rounds in which no key appears twice; later writes of a key go to later rounds (so the last one wins)."""
    rounds: list[list[int]] = []
    seen_in_round: list[set[tuple[tuple[str, object], ...]]] = []
    for index in indexes:
        key = normalized_key(writes[index].key) if writes[index].key else None
        number = 0
        if key is not None:
            number = next((n + 1 for n in range(len(rounds) - 1, -1, -1) if key in seen_in_round[n]), 0)
        while len(rounds) <= number:
            rounds.append([])
            seen_in_round.append(set())
        rounds[number].append(index)
        if key is not None:
            seen_in_round[number].add(key)
    return rounds


def _result(ref: str, outcome: Outcome, error: DataverseError, prefix: str = "") -> WriteResult:
    message = error.message
    if error.throttle_kind:
        message = f"throttled ({error.throttle_kind} limit): {message}"
    return WriteResult(ref, outcome, error.status, error.code, prefix + message, error.request_id)
