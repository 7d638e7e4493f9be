"""The queue trigger's message is base64-decoded by the app (host.json messageEncoding `none`).

Before, the host decoded it (`base64`), and a producer that sent plain JSON saw its message moved undecoded to
the poison queue, where the triage function could not decode it either: it stayed there, invisible and never
triaged, until it expired. Now it reaches the handler and ends as a `queue_encoding` dead letter (tests/e2e).
"""

from __future__ import annotations

import base64

from azure.functions.queue import QueueMessage as FunctionsQueueMessage

from shared.queues.host_options import read_queue_host_options
from shared.queues.triggers import incoming_message


def _trigger(body: bytes) -> FunctionsQueueMessage:
    return FunctionsQueueMessage(id="m-1", body=body, dequeue_count=1)


def test_the_projects_host_json_leaves_decoding_to_the_app():
    assert read_queue_host_options(environ={}).message_encoding == "none"


def test_base64_is_undone_whitespace_and_all_as_dotnet_does():
    text = "Ünïcødé ✓ " * 10
    wrapped = base64.encodebytes(text.encode())  # `base64` without -w0 wraps at 76 characters
    got = incoming_message(_trigger(wrapped), "dvsync-records")
    assert (got.body.decode(), got.encoding_error) == (text, None)


def test_text_that_is_not_base64_is_kept_with_the_reason():
    plain = b'{"table": "account", "key": {"accountnumber": "A-1"}}'
    got = incoming_message(_trigger(plain), "dvsync-records")
    assert got.body == plain
    assert got.encoding_error is not None
    assert "not base64" in got.encoding_error


def test_a_host_that_decodes_itself_is_not_decoded_twice():
    json_text = b'{"a":1}'
    got = incoming_message(_trigger(json_text), "dvsync-records", host_encoding="base64")
    assert (got.body, got.encoding_error) == (json_text, None)
