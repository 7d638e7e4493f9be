"""Dead-letter entries (format, fitting into a queue message, replay) and the app's own envelopes."""

from __future__ import annotations

import hashlib
import json

from shared.sync.contract import MAX_MESSAGE_JSON_BYTES, MAX_RECORD_JSON_BYTES, Delivery
from shared.sync.deadletter import TRUNCATION_MARKER, DeadLetter, Reason, Source, fit_to_message, new_entry
from shared.sync.envelopes import PoisonCause, pack, poison_messages, read_poison_envelope
from shared.sync.ports import JsonValue
from shared.sync.problems import ReasonKind
from tests.sync.fakes import FakeClock, account

SOURCE = Source("dvsync-records", "msg-1", 2, "2025-03-01T00:00:00+00:00")
REASON = Reason(ReasonKind.REJECTED, "dataverse_rejected", "400 0x80044331 too long")


def entry(**kwargs) -> DeadLetter:
    return new_entry(reason=REASON, source=SOURCE, now=FakeClock().now(), **kwargs)


def test_an_entry_round_trips_through_json():
    original = entry(record=account("A-1"), environment="contoso", table="account", operation="upsert",
                     ref="msg-1:0", delivery=Delivery(ref="msg-1:0", transient_attempts=2), attempts=4,
                     superseded_refs=["msg-1:3"])  # fmt: skip
    text = original.serialize()
    again = DeadLetter.from_json(json.loads(text))
    assert again == original
    assert json.loads(text)["first_failure_at"] == "2025-03-01T12:00:00+00:00"


def test_a_replay_record_keeps_the_ref_counts_the_replay_and_pins_the_environment():
    e = entry(record=account("A-1"), environment="contoso", ref="msg-1:0",
              delivery=Delivery(ref="msg-1:0", transient_attempts=5, replays=1))  # fmt: skip
    assert e.replay_record() == account("A-1") | {
        "environment": "contoso",
        "delivery": {"ref": "msg-1:0", "replays": 2},
    }


def test_a_huge_raw_message_is_cut_to_fit_with_marker_size_and_hash():
    raw = 'é"\\' * 60_000  # characters that JSON escaping or UTF-8 make longer
    fitted = fit_to_message(entry(raw_message=raw))
    text = fitted.serialize()
    assert len(text.encode()) <= MAX_MESSAGE_JSON_BYTES
    assert fitted.raw_message is not None
    assert fitted.raw_message.endswith(TRUNCATION_MARKER)
    assert fitted.truncated == {
        "field": "raw_message",
        "original_bytes": len(raw.encode()),
        "sha256": hashlib.sha256(raw.encode()).hexdigest(),
    }
    assert len(fitted.raw_message) > 5_000  # most of what fits is kept


def test_a_record_too_big_for_its_entry_becomes_cut_text_and_is_no_longer_replayable():
    big = account("A", data={"description": "x" * (MAX_RECORD_JSON_BYTES - 100)})
    long_reason = Reason(ReasonKind.REJECTED, "dataverse_rejected", "y" * 5_000, details=("z" * 3000,) * 10)
    fitted = fit_to_message(new_entry(reason=long_reason, source=SOURCE, now=FakeClock().now(), record=big))
    assert len(fitted.serialize().encode()) <= MAX_MESSAGE_JSON_BYTES
    assert len(fitted.reason.message) == 2000
    assert fitted.record is None  # shortening the texts was not enough
    assert not fitted.replayable
    assert fitted.truncated is not None
    assert fitted.truncated["field"] == "record"
    assert fitted.raw_message is not None
    assert fitted.raw_message.endswith(TRUNCATION_MARKER)


def test_entries_that_fit_are_left_alone():
    e = entry(record=account("A-1"))
    assert fit_to_message(e) is e


def test_pack_fills_messages_up_to_the_limit_in_order():
    items: list[dict[str, JsonValue]] = [{"n": i, "pad": "x" * 1000} for i in range(200)]
    texts = pack(items, {"schema": "dataverse-sync/v1"})
    assert len(texts) == 5
    assert all(len(t.encode()) <= MAX_MESSAGE_JSON_BYTES for t in texts)
    assert [r["n"] for t in texts for r in json.loads(t)["records"]] == list(range(200))
    assert len(texts[0].encode()) > MAX_MESSAGE_JSON_BYTES - 1100  # full, not half-empty


def test_a_poison_envelope_reads_back():
    cause = PoisonCause("transient", "DeadlineExceeded", None, None, "time budget", None)
    [text] = poison_messages([account("A")], cause=cause, original={"message_id": "m"}, poisoned_at="t")
    envelope = read_poison_envelope(text)
    assert envelope is not None
    assert envelope.cause == cause
    assert envelope.records == [account("A")]
    assert read_poison_envelope(json.dumps(account("A"))) is None
    assert read_poison_envelope('{"schema":"dataverse-sync/poison-v1","cause":1}') is None


def test_an_odd_entry_is_read_leniently_so_that_tooling_can_still_show_it():
    odd = {"schema": "dataverse-sync/deadletter-v1", "id": "e1", "reason": "not an object", "source": ["q"],
           "attempts": "many", "superseded_refs": 5, "truncated": "yes"}  # fmt: skip
    entry = DeadLetter.from_json(odd)
    assert (entry.id, entry.reason.code, entry.source.queue) == ("e1", "", "")
    assert (entry.attempts, entry.superseded_refs, entry.truncated) == (0, (), None)
    details = DeadLetter.from_json({"reason": {"code": "c", "details": 5}, "attempts": "3"})
    assert (details.reason.code, details.reason.details, details.attempts) == ("c", (), 3)
