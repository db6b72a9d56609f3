"""Legacy encryptedData and rawData signature (WECHAT.md, "Legacy encryptedData")."""

from __future__ import annotations

import pytest

from idp.wechat.crypto import (
    decrypt_encrypted_data,
    encrypt_for_test,
    raw_data_signature,
    raw_data_signature_matches,
)
from idp.wechat.errors import DecryptionFailed, WatermarkMismatch

# The public vector from WeChat's docs, also in wechatpy's tests.
APPID = "wx4f4bc4dec97d474b"
SESSION_KEY = "tiihtNczf5v6AKRyjwEUhQ=="
IV = "r7BXXKkLb8qrSNn05n0qiA=="
ENCRYPTED_DATA = (
    "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+"
    "3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6"
    "/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs"
    "8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns"
    "/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG"
    "20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew=="
)
# wechatpy's rawData signature vector.
RAW_DATA = (
    '{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong",'
    '"country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQx'
    'KARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}'
)
RAW_DATA_SESSION_KEY = "HyVFkGl5F5OQWJZZaNzBBg=="
RAW_DATA_SIGNATURE = "75e81ceda165f4ffa64f4068af58c64b8f54b88c"


def test_public_vector_decrypts_to_the_documented_user() -> None:
    data = decrypt_encrypted_data(SESSION_KEY, ENCRYPTED_DATA, IV, APPID)
    assert data["openId"] == "oGZUI0egBJY1zhBYw2KhdUfwVJJE"
    assert data["unionId"] == "ocMvos6NjeKLIBqg5Mr9QjxrP1FA"
    assert data["watermark"] == {"timestamp": 1477314187, "appid": APPID}


def test_data_watermarked_for_another_appid_is_rejected() -> None:
    with pytest.raises(WatermarkMismatch):
        decrypt_encrypted_data(SESSION_KEY, ENCRYPTED_DATA, IV, "wxanotherapp00000")


@pytest.mark.parametrize(
    ("session_key", "encrypted_data", "iv"),
    [
        ("HyVFkGl5F5OQWJZZaNzBBg==", ENCRYPTED_DATA, IV),  # a stale session_key
        ("abc", ENCRYPTED_DATA, IV),
        (SESSION_KEY, "abc", IV),
        (SESSION_KEY, ENCRYPTED_DATA, "abc"),
        (SESSION_KEY, "not base64!", IV),
    ],
    ids=["wrong_key", "short_key", "short_data", "short_iv", "not_base64"],
)
def test_undecryptable_input_is_decryption_failed(
    session_key: str, encrypted_data: str, iv: str
) -> None:
    with pytest.raises(DecryptionFailed):
        decrypt_encrypted_data(session_key, encrypted_data, iv, APPID)


def test_encrypt_for_test_round_trips() -> None:
    payload = {"phoneNumber": "13800138000", "watermark": {"appid": APPID, "timestamp": 1}}
    encrypted = encrypt_for_test(SESSION_KEY, payload, IV)
    assert decrypt_encrypted_data(SESSION_KEY, encrypted, IV, APPID) == payload


def test_raw_data_signature_matches_the_wechatpy_vector() -> None:
    assert raw_data_signature(RAW_DATA, RAW_DATA_SESSION_KEY) == RAW_DATA_SIGNATURE
    assert raw_data_signature_matches(RAW_DATA, RAW_DATA_SIGNATURE, RAW_DATA_SESSION_KEY)
    assert not raw_data_signature_matches(RAW_DATA, "fake_sign", RAW_DATA_SESSION_KEY)
