"""The `$batch` codec against the two documented examples (execute-batch-operations-using-web-api), verbatim
as quoted in /work/shared/reference/dataverse-webapi.md §3, with LF (as rendered) and CRLF line endings."""

from __future__ import annotations

import email.parser
import email.policy
import json

import pytest

from shared.dataverse.batch import (
    BatchFormatError,
    BatchOperation,
    ChangeSet,
    decode_batch_response,
    encode_batch,
)

VECTOR_A_REQUEST = """--batch_22975cad-7f57-410d-be15-6363209367ea
Content-Type: multipart/mixed; boundary="changeset_246e6bfe-89a4-4c77-b293-7a433f082e8a"

--changeset_246e6bfe-89a4-4c77-b293-7a433f082e8a
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 1

POST /api/data/v9.2/tasks HTTP/1.1
Content-Type: application/json; type=entry

{
  "subject": "Task 1 in batch",
  "regardingobjectid_account_task@odata.bind": "accounts(00000000-0000-0000-0000-000000000001)"
}
--changeset_246e6bfe-89a4-4c77-b293-7a433f082e8a--

--batch_22975cad-7f57-410d-be15-6363209367ea
Content-Type: application/http
Content-Transfer-Encoding: binary

GET /api/data/v9.2/accounts(00000000-0000-0000-0000-000000000001)/Account_Tasks?$select=subject HTTP/1.1


--batch_22975cad-7f57-410d-be15-6363209367ea--
"""
VECTOR_A_REQUEST_TYPE = 'multipart/mixed; boundary="batch_22975cad-7f57-410d-be15-6363209367ea"'

VECTOR_A_RESPONSE = """--batchresponse_f27ef42d-51b0-4685-bac9-f468f844de2f
Content-Type: multipart/mixed; boundary=changesetresponse_64cc3fff-023a-45b0-b29d-df21583ffa15

--changesetresponse_64cc3fff-023a-45b0-b29d-df21583ffa15
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 1

HTTP/1.1 204 No Content
OData-Version: 4.0
Location: [Organization Uri]/api/data/v9.2/tasks(e73ffc82-e292-ed11-aad1-000d3a9933c9)
OData-EntityId: [Organization Uri]/api/data/v9.2/tasks(e73ffc82-e292-ed11-aad1-000d3a9933c9)


--changesetresponse_64cc3fff-023a-45b0-b29d-df21583ffa15--
--batchresponse_f27ef42d-51b0-4685-bac9-f468f844de2f
Content-Type: application/http
Content-Transfer-Encoding: binary

HTTP/1.1 200 OK
Content-Type: application/json; odata.metadata=minimal; odata.streaming=true
OData-Version: 4.0

{
  "@odata.context": "[Organization Uri]/api/data/v9.2/$metadata#tasks(subject)",
  "value": [
    {
      "@odata.etag": "W/\\"77181173\\"",
      "subject": "Task 1 in batch",
      "activityid": "e73ffc82-e292-ed11-aad1-000d3a9933c9"
    }
  ]
}
--batchresponse_f27ef42d-51b0-4685-bac9-f468f844de2f--
"""
VECTOR_A_RESPONSE_TYPE = "multipart/mixed; boundary=batchresponse_f27ef42d-51b0-4685-bac9-f468f844de2f"

VECTOR_B_ERROR = (
    '{"error":{"code":"0x80044331","message":"A validation error occurred.  The length of the \'subject\' '
    "attribute of the 'task' entity exceeded the maximum allowed length of '200'.\"}}"
)
VECTOR_B_RESPONSE = """--batchresponse_156da4b8-cd2c-4862-a911-4aaab97c001a
Content-Type: application/http
Content-Transfer-Encoding: binary

HTTP/1.1 400 Bad Request
REQ_ID: 5ecd1cb3-1730-4ffc-909c-d44c22270026
Content-Type: application/json; odata.metadata=minimal
OData-Version: 4.0

ERROR_BODY
--batchresponse_156da4b8-cd2c-4862-a911-4aaab97c001a--
""".replace("ERROR_BODY", VECTOR_B_ERROR)
VECTOR_B_RESPONSE_TYPE = "multipart/mixed; boundary=batchresponse_156da4b8-cd2c-4862-a911-4aaab97c001a"


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


def mime_parts(body: bytes, content_type: str) -> list[tuple[dict[str, str], str]]:
    """An independent reading of a multipart body (the stdlib email parser): per leaf part, its MIME headers and
    its payload (the embedded HTTP request) with normalized line endings and a canonical JSON body."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    leaves = []
    for part in message.walk():
        if part.is_multipart():
            continue
        headers = {k.lower(): v for k, v in part.items()}
        payload = str(part.get_payload()).replace("\r\n", "\n")
        head, _, entity = payload.partition("\n\n")
        head_lines = [line for line in head.split("\n") if not line.lower().startswith("content-length")]
        canonical = json.dumps(json.loads(entity)) if entity.strip() else ""
        leaves.append((headers, "\n".join(head_lines) + "\n\n" + canonical))
    return leaves


def vector_a_items() -> list[BatchOperation | ChangeSet]:
    return [
        ChangeSet(
            [
                BatchOperation(
                    "POST",
                    "tasks",
                    {
                        "subject": "Task 1 in batch",
                        "regardingobjectid_account_task@odata.bind": "accounts(00000000-0000-0000-0000-000000000001)",
                    },
                    content_id="1",
                )
            ],
            boundary="changeset_246e6bfe-89a4-4c77-b293-7a433f082e8a",
        ),
        BatchOperation("GET", "accounts(00000000-0000-0000-0000-000000000001)/Account_Tasks?$select=subject"),
    ]


def test_encoder_produces_the_documented_request_of_vector_a() -> None:
    body, content_type = encode_batch(
        vector_a_items(), service_path="/api/data/v9.2", boundary="batch_22975cad-7f57-410d-be15-6363209367ea"
    )
    assert content_type == VECTOR_A_REQUEST_TYPE
    assert b"\r\n" in body
    assert b"\n" not in body.replace(b"\r\n", b"")
    documented = mime_parts(crlf(VECTOR_A_REQUEST), VECTOR_A_REQUEST_TYPE)
    assert len(documented) == 2
    assert documented[0][0]["content-id"] == "1"
    assert mime_parts(body, content_type) == documented


def test_encoder_gives_post_and_patch_parts_their_content_length() -> None:
    body, _ = encode_batch(
        [BatchOperation("PATCH", "accounts(accountnumber='A%C3%A9')", {"name": "Café"})],
        service_path="/api/data/v9.2",
    )
    text = body.decode()
    entity = json.dumps({"name": "Café"}, ensure_ascii=False, separators=(",", ":"))
    assert f"Content-Length: {len(entity.encode())}\r\n" in text
    assert "PATCH /api/data/v9.2/accounts(accountnumber='A%C3%A9') HTTP/1.1\r\n" in text


def test_encoder_numbers_changeset_parts_and_rejects_get_in_changeset() -> None:
    body, content_type = encode_batch(
        [ChangeSet([BatchOperation("POST", "accounts", {"name": "a"}), BatchOperation("POST", "accounts", {})])],
        service_path="/api/data/v9.2",
    )
    assert [h.get("content-id") for h, _ in mime_parts(body, content_type)] == ["1", "2"]
    with pytest.raises(ValueError, match="GET"):
        encode_batch([ChangeSet([BatchOperation("GET", "accounts")])], service_path="/api/data/v9.2")


def test_encoder_enforces_the_1000_operation_limit() -> None:
    encode_batch([BatchOperation("DELETE", f"accounts({i})") for i in range(1000)], service_path="/x")
    with pytest.raises(ValueError, match="1000"):
        encode_batch([BatchOperation("DELETE", f"accounts({i})") for i in range(1001)], service_path="/x")
    with pytest.raises(ValueError):
        encode_batch([], service_path="/x")


@pytest.mark.parametrize("line_ending", ["LF", "CRLF"])
def test_decoder_reads_vector_a_response(line_ending: str) -> None:
    content = VECTOR_A_RESPONSE.encode() if line_ending == "LF" else crlf(VECTOR_A_RESPONSE)
    created, query = decode_batch_response(content, VECTOR_A_RESPONSE_TYPE)
    assert (created.status, created.reason, created.content_id) == (204, "No Content", "1")
    assert created.headers["odata-entityid"].endswith("tasks(e73ffc82-e292-ed11-aad1-000d3a9933c9)")
    assert created.json() is None
    assert query.status == 200
    assert query.content_id is None
    assert query.json()["value"][0]["subject"] == "Task 1 in batch"


@pytest.mark.parametrize("line_ending", ["LF", "CRLF"])
def test_decoder_reads_vector_b_error(line_ending: str) -> None:
    content = VECTOR_B_RESPONSE.encode() if line_ending == "LF" else crlf(VECTOR_B_RESPONSE)
    (failed,) = decode_batch_response(content, VECTOR_B_RESPONSE_TYPE)
    assert failed.status == 400
    assert failed.headers["REQ_ID"] == "5ecd1cb3-1730-4ffc-909c-d44c22270026"
    assert failed.json()["error"]["code"] == "0x80044331"
    assert failed.json()["error"]["message"].endswith("maximum allowed length of '200'.")


def test_decoder_rejects_non_multipart_answers() -> None:
    with pytest.raises(BatchFormatError):
        decode_batch_response(b'{"error":{"code":"0x0","message":"bad"}}', "application/json")
    with pytest.raises(BatchFormatError):
        decode_batch_response(
            b"--b\r\nContent-Type: application/http\r\n\r\nnot http\r\n--b--", "multipart/mixed; boundary=b"
        )


def test_decoder_rejects_a_status_that_is_a_digit_but_not_a_number() -> None:
    # '²'.isdigit() is True but int('²') raises: the decoder must answer with its own error, not ValueError.
    with pytest.raises(BatchFormatError):
        decode_batch_response(
            "--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 ² OK\r\n\r\n\r\n--b--".encode(),
            "multipart/mixed; boundary=b",
        )
