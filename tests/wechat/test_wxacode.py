"""Mini-program codes: POST /wxa/getwxacodeunlimit (wxacode.getUnlimited): an image on success,
JSON errcode (HTTP 200) on failure; the client and the fake against each other on loopback."""

from __future__ import annotations

import struct
import zlib

import pytest
import requests

from idp.wechat.client import WeChatClient
from idp.wechat.errors import InvalidAccessToken, MiniProgramCodeRefused, UpstreamUnavailable
from idp.wechat.fake import FakeWeChatControl, FakeWeChatServer

from .conftest import MINI_APPID

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the chunk's CRC: a real PNG."""
    assert data.startswith(PNG_SIGNATURE)
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    header = data[16:29]
    (crc,) = struct.unpack(">I", data[29:33])
    assert crc == zlib.crc32(kind + header) & 0xFFFFFFFF
    width, height = struct.unpack(">II", header[:8])
    return width, height


def test_code_is_a_real_png_and_the_request_is_recorded__wxacode_getunlimited(
    client: WeChatClient, control: FakeWeChatControl
) -> None:
    image = client.get_unlimited_wxacode("Ab-_.~12345678901234567890123456", "pages/scan/scan")
    width, height = png_size(image)
    assert width == height and 280 <= width <= 430
    (drawn,) = control.wxacodes()
    assert drawn["scene"] == "Ab-_.~12345678901234567890123456" and drawn["appid"] == MINI_APPID
    (call,) = control.calls("/wxa/getwxacodeunlimit")
    assert call["body"]["check_path"] is True and call["body"]["env_version"] == "release"


@pytest.mark.parametrize(
    ("scene", "page", "options", "errcode"),
    [
        ("x" * 33, "pages/scan/scan", {}, 40169),  # more than 32 characters
        ("no spaces", "pages/scan/scan", {}, 40169),  # outside WeChat's character set
        ("ticket", "/pages/scan/scan", {}, 41030),  # a leading slash
        ("ticket", "pages/scan/scan?a=1", {}, 41030),  # a query
        ("ticket", "pages/unpublished/page", {}, 41030),  # check_path: not published
        ("ticket", "pages/scan/scan", {"env_version": "beta"}, 40097),
    ],
)
def test_refusals_are_typed__wxacode_getunlimited(
    client: WeChatClient, control: FakeWeChatControl, scene: str, page: str,
    options: dict[str, str], errcode: int
) -> None:
    with pytest.raises(MiniProgramCodeRefused) as refused:
        client.get_unlimited_wxacode(scene, page, **options)  # type: ignore[arg-type]
    assert refused.value.errcode == errcode
    assert control.wxacodes() == []


def test_unpublished_page_is_allowed_without_check_path(
    client: WeChatClient, control: FakeWeChatControl
) -> None:
    image = client.get_unlimited_wxacode(
        "ticket", "pages/unpublished/page", check_path=False, env_version="trial"
    )
    assert image.startswith(PNG_SIGNATURE)


def test_a_rejected_access_token_is_refreshed_once_and_the_code_drawn(
    client: WeChatClient, control: FakeWeChatControl
) -> None:
    control.arm_failure("/wxa/getwxacodeunlimit", errcode=40001)
    assert client.get_unlimited_wxacode("ticket", "pages/scan/scan").startswith(PNG_SIGNATURE)
    assert len(control.calls("/wxa/getwxacodeunlimit")) == 2
    control.arm_failure("/wxa/getwxacodeunlimit", errcode=42001, times=2)
    with pytest.raises(InvalidAccessToken):
        client.get_unlimited_wxacode("ticket", "pages/scan/scan")


def test_garbage_instead_of_an_image_is_upstream_unavailable(
    client: WeChatClient, control: FakeWeChatControl
) -> None:
    control.arm_failure("/wxa/getwxacodeunlimit", status=502)
    with pytest.raises(UpstreamUnavailable):
        client.get_unlimited_wxacode("ticket", "pages/scan/scan")
    control.arm_failure("/wxa/getwxacodeunlimit", body='{"errcode": 0}',
                        content_type="application/json")
    with pytest.raises(UpstreamUnavailable):
        client.get_unlimited_wxacode("ticket", "pages/scan/scan")


def test_fake_wants_a_valid_access_token(fake_wechat: FakeWeChatServer,
                                         control: FakeWeChatControl) -> None:
    answer = requests.post(f"{fake_wechat.base_url}/wxa/getwxacodeunlimit?access_token=forged",
                           json={"scene": "ticket"}, timeout=5)
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["errcode"] == 40001
