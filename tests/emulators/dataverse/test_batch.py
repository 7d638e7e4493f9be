"""Issue 4 item 4: $batch. The two documented examples (vectors/, verbatim from the reference, taken from
PAD/webapi/execute-batch-operations-using-web-api.md) round-trip: the emulator's answer equals the documented
one once boundaries, GUIDs, ETags and the org URL are normalised and JSON bodies are compared as JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests

from tests.emulators.dataverse.conftest import Api, Cloud

VECTORS = Path(__file__).with_name("vectors")
ORG_PLACEHOLDER = "[Organization Uri]"
GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
ACCOUNT_1 = "00000000-0000-0000-0000-000000000001"


def split_http(text: str) -> tuple[str, dict[str, str], str]:
    """A documented HTTP message -> (start line, headers, body)."""
    head, _, body = text.replace("\r\n", "\n").partition("\n\n")
    start, *lines = head.split("\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return start, headers, body


def canonical(body: str, org_url: str) -> str:
    """Normalise a multipart body so the documented and the emulated answers can be compared as text."""
    text = body.replace("\r\n", "\n").replace(ORG_PLACEHOLDER, org_url)
    text = re.sub(r"batchresponse_" + GUID, "batchresponse_B", text)
    text = re.sub(r"changesetresponse_" + GUID, "changesetresponse_C", text)
    text = re.sub(r'W/\\"\d+\\"', 'W/\\"ETAG\\"', text)
    text = re.sub(GUID, "GUID", text)
    lines, out, pending = text.split("\n"), [], ""
    for line in lines:
        if pending or line.startswith("{"):
            pending += line
            try:
                out.append(json.dumps(json.loads(pending), sort_keys=True))
                pending = ""
            except ValueError:
                continue
        else:
            out.append(line)
    return "\n".join(out).strip()


def post_batch(api: Api, body: str, boundary: str, prefer: str | None = None) -> requests.Response:
    headers = {"Content-Type": f'multipart/mixed; boundary="{boundary}"'}
    if prefer:
        headers["Prefer"] = prefer
    return api.post("$batch", data=body.encode("utf-8"), headers=headers)


def test_documented_example_a_change_set_and_get_round_trip(cloud: Cloud, api: Api) -> None:
    cloud.org().seed("account", [{"accountid": ACCOUNT_1, "name": "Contoso", "accountnumber": "A-1"}])
    start, headers, request_body = split_http((VECTORS / "batch_a_request.http").read_text())
    assert start.startswith("POST [Organization Uri]/api/data/v9.2/$batch")
    boundary = re.search(r'boundary="([^"]+)"', headers["Content-Type"]).group(1)  # type: ignore[union-attr]

    response = api.post("$batch", data=request_body.encode(), headers={"Content-Type": headers["Content-Type"]})

    doc_start, doc_headers, doc_body = split_http((VECTORS / "batch_a_response.http").read_text())
    assert doc_start == "HTTP/1.1 200 OK"
    assert response.status_code == 200
    assert response.headers["OData-Version"] == doc_headers["OData-Version"]
    assert response.headers["Content-Type"].startswith("multipart/mixed; boundary=batchresponse_")
    assert canonical(response.text, api.url) == canonical(doc_body, api.url)
    assert boundary not in response.text  # response boundaries differ from the request's
    task = cloud.org().rows("task")[0]
    assert task["subject"] == "Task 1 in batch"
    assert task["regardingobjectid"] == ACCOUNT_1


def vector_b_request(boundary: str, newline: str = "\r\n") -> str:
    subjects = ["x" * 201, "Task 2 in batch", "Task 3 in batch"]
    parts = []
    for subject in subjects:
        payload = json.dumps({"subject": subject})
        parts.append(
            newline.join(
                [
                    f"--{boundary}",
                    "Content-Type: application/http",
                    "Content-Transfer-Encoding: binary",
                    "",
                    "POST /api/data/v9.2/tasks HTTP/1.1",
                    "Content-Type: application/json; type=entry",
                    f"Content-Length: {len(payload)}",
                    "",
                    payload,
                ]
            )
        )
    return newline.join([*parts, f"--{boundary}--", ""])


def test_documented_example_b_stops_at_the_first_error(cloud: Cloud, api: Api) -> None:
    response = post_batch(api, vector_b_request("batch_B"), "batch_B")
    doc_start, _, doc_body = split_http((VECTORS / "batch_b_response.http").read_text())
    assert doc_start == "HTTP/1.1 400 BadRequest"
    assert response.status_code == 400
    ours = re.sub(r"REQ_ID: GUID", "REQ_ID: R", canonical(response.text, api.url))
    assert ours == re.sub(r"REQ_ID: GUID", "REQ_ID: R", canonical(doc_body, api.url))
    assert cloud.org().count("task") == 0


def test_example_b_with_continue_on_error_answers_every_part(cloud: Cloud, api: Api) -> None:
    response = post_batch(api, vector_b_request("batch_B"), "batch_B", prefer="odata.continue-on-error")
    assert response.status_code == 200
    statuses = re.findall(r"^HTTP/1.1 (\d{3}) ", response.text, re.MULTILINE)
    assert statuses == ["400", "204", "204"]
    assert response.text.count("Location: ") == 2
    assert cloud.org().count("task") == 2


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_line_endings_lf_and_crlf_are_accepted(cloud: Cloud, api: Api, newline: str) -> None:
    body = vector_b_request("batch_LE", newline).replace("x" * 201, "short")
    response = post_batch(api, body, "batch_LE")
    assert response.status_code == 200
    assert cloud.org().count("task") == 3


def change_set(boundary: str, requests: list[tuple[str, str, dict[str, object] | None, str | None]]) -> str:
    """A batch with one change set; requests are (method, url, body, content_id)."""
    lines = [f"--{boundary}", f"Content-Type: multipart/mixed; boundary=changeset_{boundary}", ""]
    for method, url, body, content_id in requests:
        lines += [f"--changeset_{boundary}", "Content-Type: application/http", "Content-Transfer-Encoding: binary"]
        if content_id:
            lines.append(f"Content-ID: {content_id}")
        lines += ["", f"{method} {url} HTTP/1.1", "Content-Type: application/json; type=entry", ""]
        lines.append(json.dumps(body) if body is not None else "")
    lines += [f"--changeset_{boundary}--", f"--{boundary}--", ""]
    return "\r\n".join(lines)


def test_change_set_content_id_references(cloud: Cloud, api: Api) -> None:
    body = change_set(
        "batch_R",
        [
            ("POST", "accounts", {"name": "Parent", "accountnumber": "CS-1"}, "1"),
            ("PATCH", "$1", {"telephone1": "555"}, "2"),
            ("POST", "contacts", {"lastname": "Kid", "parentcustomerid_account@odata.bind": "$1"}, "3"),
        ],
    )
    response = post_batch(api, body, "batch_R")
    assert response.status_code == 200
    assert re.findall(r"Content-ID: (\d)", response.text) == ["1", "2", "3"]
    account = cloud.org().row("account", accountnumber="CS-1")
    assert account is not None
    assert account["telephone1"] == "555"
    assert cloud.org().rows("contact")[0]["parentcustomerid"] == account["accountid"]


def test_change_set_is_atomic(cloud: Cloud, api: Api) -> None:
    body = change_set(
        "batch_T",
        [
            ("POST", "accounts", {"name": "ok", "accountnumber": "T-1"}, "1"),
            ("POST", "accounts", {"name": "x" * 161}, "2"),
        ],
    )
    response = post_batch(api, body, "batch_T")
    assert response.status_code == 400
    assert "0x80044331" in response.text
    assert "changesetresponse_" not in response.text
    assert cloud.org().count("account") == 0


def test_forward_reference_and_get_in_change_set_fail(cloud: Cloud, api: Api) -> None:
    forward = change_set("batch_F", [("PATCH", "$2", {"name": "x"}, "1"), ("POST", "accounts", {"name": "y"}, "2")])
    response = post_batch(api, forward, "batch_F")
    assert response.status_code == 400
    assert "Content-ID Reference: '$2' does not exist in the batch context." in response.text
    assert cloud.org().count("account") == 0
    with_get = change_set("batch_G", [("GET", "accounts", None, None)])
    assert post_batch(api, with_get, "batch_G").status_code == 400


def test_more_than_1000_operations_are_refused(cloud: Cloud, api: Api) -> None:
    part = "--batch_M\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    parts = [part + "GET WhoAmI HTTP/1.1\r\n\r\n"] * 1001
    response = post_batch(api, "".join(parts) + "--batch_M--\r\n", "batch_M")
    assert response.status_code == 400
    assert "maximum number of '1000' query operations" in response.json()["error"]["message"]
    ok = post_batch(api, "".join(parts[:1000]) + "--batch_M--\r\n", "batch_M")
    assert ok.status_code == 200
    assert ok.text.count("HTTP/1.1 200 OK") == 1000


def test_malformed_batch_is_a_400(api: Api) -> None:
    assert api.post("$batch", data=b"nothing", headers={"Content-Type": "application/json"}).status_code == 400
    no_end = "--batch_X\r\nContent-Type: application/http\r\n\r\nGET WhoAmI HTTP/1.1\r\n\r\n"
    assert post_batch(api, no_end, "batch_X").status_code == 400
