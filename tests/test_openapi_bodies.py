import base64
import email.parser
import email.policy
from urllib.parse import parse_qsl

import orjson
import pytest

from mcp_anything.tools import ArgumentError
from tests.support.openapi import SHARED_SPECS, SPECS, tools_by_name


@pytest.fixture(scope="module")
def tools() -> dict:
    return tools_by_name(SPECS / "bodies.yaml", tool_prefix="")


def call(tool, arguments):
    tool.validate(arguments)
    return tool.build_request(arguments)


def parts(request) -> list:
    """The parts of a multipart request, parsed by the standard library's MIME parser."""
    head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    return list(message.iter_parts())


def test_json_is_preferred(tools) -> None:
    request = call(tools["post_json_preferred"], {"name": "n", "on": True})
    assert request.headers["Content-Type"] == "application/vnd.api+json"
    assert orjson.loads(request.body) == {"name": "n", "on": True}


def test_form_urlencoded_with_encoding(tools) -> None:
    arguments = {"name": "a b&c", "ids": [1, 2], "tags": ["x", "y"], "meta": {"a": 1}, "on": False}
    request = call(tools["post_form"], arguments)
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qsl(request.body.decode()) == [
        ("name", "a b&c"),
        ("ids", "1,2"),
        ("tags", "x"),
        ("tags", "y"),
        ("meta", '{"a":1}'),
        ("on", "false"),
    ]


def test_multipart_with_files(tools) -> None:
    tool = tools["post_upload"]
    assert tool.input_schema["properties"]["file"]["required"] == ["content"]
    assert tool.input_schema["properties"]["file"]["description"] == "The document."
    assert tool.input_schema["properties"]["photos"]["items"]["properties"]["content"]["contentEncoding"] == "base64"
    pdf = base64.b64encode(b"%PDF-1.7 \x00\xff").decode()
    request = call(
        tool,
        {
            "file": {"content": pdf, "filename": 'a"b.pdf'},
            "photos": [{"content": "aGk=", "filename": "1.png", "content_type": "image/png"}, {"content": "aGk="}],
            "title": "T",
            "tags": ["a", "b"],
            "meta": {"a": 1},
        },
    )
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    found = [
        (
            p.get_param("name", header="content-disposition"),
            p.get_filename(),
            p.get_content_type(),
            p.get_payload(decode=True),
        )
        for p in parts(request)
    ]
    assert found == [
        ("file", "a%22b.pdf", "application/pdf", b"%PDF-1.7 \x00\xff"),
        ("photos", "1.png", "image/png", b"hi"),
        ("photos", "photos", "application/octet-stream", b"hi"),
        ("title", None, "text/plain", b"T"),
        ("tags", None, "text/plain", b"a"),
        ("tags", None, "text/plain", b"b"),
        ("meta", None, "application/json", b'{"a":1}'),
    ]


def test_multipart_rejects_bad_base64_and_header_injection(tools) -> None:
    with pytest.raises(ArgumentError, match="argument 'file': not valid base64"):
        call(tools["post_upload"], {"file": {"content": "%%%"}})
    with pytest.raises(ArgumentError, match="argument 'file'"):
        call(tools["post_upload"], {"file": {"content": "aGk=", "filename": "x\r\nContent-Type: evil"}})


def test_text_bodies(tools) -> None:
    request = call(tools["put_text"], {"body": "héllo"})
    assert (request.body, request.headers["Content-Type"]) == ("héllo".encode(), "text/plain")
    with pytest.raises(ArgumentError, match="argument 'body'"):
        tools["put_text"].validate({"body": "x" * 11})
    request = call(tools["put_xml"], {"body": "<a/>"})
    assert (request.body, request.headers["Content-Type"]) == (b"<a/>", "application/xml")
    assert call(tools["put_xml"], {}).body is None


def test_binary_bodies_take_base64(tools) -> None:
    tool = tools["put_raw"]
    assert tool.input_schema["properties"]["body"]["contentEncoding"] == "base64"
    assert tool.input_schema["properties"]["body"]["description"] == "The raw image."
    request = call(tool, {"body": base64.b64encode(b"\x89PNG").decode()})
    assert (request.body, request.headers["Content-Type"]) == (b"\x89PNG", "image/png")
    with pytest.raises(ArgumentError, match="argument 'body': not valid base64"):
        call(tool, {"body": "not base64!"})


@pytest.mark.corpus
def test_twilio_form_bodies_are_flattened() -> None:
    twilio = tools_by_name(SHARED_SPECS / "twilio" / "twilio_api_v2010.json", tool_prefix="")
    tool = twilio["create_call"]
    assert {"AccountSid", "To", "From", "Url"} <= set(tool.input_schema["properties"])
    request = call(tool, {"AccountSid": "AC" + "0" * 32, "To": "+1555", "From": "+1666", "Url": "https://x/y"})
    assert request.path == f"/2010-04-01/Accounts/AC{'0' * 32}/Calls.json"
    assert parse_qsl(request.body.decode()) == [("To", "+1555"), ("From", "+1666"), ("Url", "https://x/y")]
