"""What can go wrong when a provider is asked to send, normalised across providers.

Each provider error code maps to one `SmsErrorKind`; the kind decides what the user reads and
whether an operator must act (`alert`). Unknown codes are `PROVIDER_REFUSED`: an operator looks.
"""

from __future__ import annotations

from enum import StrEnum


class SmsErrorKind(StrEnum):
    PHONE_LIMIT = "phone_limit"  # the provider's own per-number frequency control
    INVALID_PHONE = "invalid_phone"  # not a mobile number the provider can reach
    BALANCE = "balance"  # the account ran out of money or of its SMS package
    CREDENTIALS = "credentials"  # wrong key id / secret / signature: our configuration
    TEMPLATE = "template"  # sign name or template not approved, parameters wrong
    UNAVAILABLE = "unavailable"  # timeout, unreachable, 5xx, an answer that is not one
    PROVIDER_REFUSED = "provider_refused"  # any other refusal


# Kinds an operator must act on: the log line is an ERROR meant to page someone.
ALERT_KINDS = frozenset(
    {SmsErrorKind.BALANCE, SmsErrorKind.CREDENTIALS, SmsErrorKind.TEMPLATE}
)


class SmsError(Exception):
    def __init__(self, provider: str, code: str, kind: SmsErrorKind, message: str = ""):
        super().__init__(f"{provider} refused to send: {code} ({kind.value})")
        self.provider = provider
        self.code = code
        self.kind = kind
        self.provider_message = message[:200]

    @property
    def alert(self) -> bool:
        return self.kind in ALERT_KINDS


ALIYUN_CODES: dict[str, SmsErrorKind] = {
    "isv.BUSINESS_LIMIT_CONTROL": SmsErrorKind.PHONE_LIMIT,
    "isv.DAY_LIMIT_CONTROL": SmsErrorKind.PHONE_LIMIT,
    "isv.MOBILE_NUMBER_ILLEGAL": SmsErrorKind.INVALID_PHONE,
    "isv.MOBILE_COUNT_OVER_LIMIT": SmsErrorKind.INVALID_PHONE,
    "isv.BLACK_KEY_CONTROL_LIMIT": SmsErrorKind.TEMPLATE,
    "isv.AMOUNT_NOT_ENOUGH": SmsErrorKind.BALANCE,
    "isv.OUT_OF_SERVICE": SmsErrorKind.BALANCE,
    "isv.SMS_SIGNATURE_ILLEGAL": SmsErrorKind.TEMPLATE,
    "isv.SMS_TEMPLATE_ILLEGAL": SmsErrorKind.TEMPLATE,
    # An international (国际/港澳台) template sent to a mainland number.
    "isv.DOMESTIC_NUMBER_NOT_SUPPORTED": SmsErrorKind.TEMPLATE,
    "isv.TEMPLATE_MISSING_PARAMETERS": SmsErrorKind.TEMPLATE,
    "isv.INVALID_JSON_PARAM": SmsErrorKind.TEMPLATE,
    "isv.PARAM_LENGTH_LIMIT": SmsErrorKind.TEMPLATE,
    "SignatureDoesNotMatch": SmsErrorKind.CREDENTIALS,
    "InvalidAccessKeyId.NotFound": SmsErrorKind.CREDENTIALS,
    "InvalidAccessKeyId.Inactive": SmsErrorKind.CREDENTIALS,
    "InvalidTimeStamp.Expired": SmsErrorKind.CREDENTIALS,
    "SignatureNonceUsed": SmsErrorKind.UNAVAILABLE,
    "isp.SYSTEM_ERROR": SmsErrorKind.UNAVAILABLE,
    "isp.RAM_PERMISSION_DENY": SmsErrorKind.CREDENTIALS,
    "isv.ACCOUNT_NOT_EXISTS": SmsErrorKind.CREDENTIALS,
    "Throttling.User": SmsErrorKind.UNAVAILABLE,
}

TENCENT_CODES: dict[str, SmsErrorKind] = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": SmsErrorKind.PHONE_LIMIT,
    "LimitExceeded.PhoneNumberOneHourLimit": SmsErrorKind.PHONE_LIMIT,
    "LimitExceeded.PhoneNumberDailyLimit": SmsErrorKind.PHONE_LIMIT,
    "LimitExceeded.PhoneNumberSameContentDailyLimit": SmsErrorKind.PHONE_LIMIT,
    "LimitExceeded.DeliveryFrequencyLimit": SmsErrorKind.PHONE_LIMIT,
    "InvalidParameterValue.IncorrectPhoneNumber": SmsErrorKind.INVALID_PHONE,
    "UnsupportedOperation.UnsupportedRegion": SmsErrorKind.INVALID_PHONE,
    "FailedOperation.PhoneNumberInBlacklist": SmsErrorKind.INVALID_PHONE,
    "FailedOperation.InsufficientBalanceInSmsPackage": SmsErrorKind.BALANCE,
    "FailedOperation.ContainSensitiveWord": SmsErrorKind.TEMPLATE,
    "FailedOperation.SignatureIncorrectOrUnapproved": SmsErrorKind.TEMPLATE,
    "FailedOperation.TemplateIncorrectOrUnapproved": SmsErrorKind.TEMPLATE,
    "FailedOperation.TemplateParamSetNotMatchApprovedTemplate": SmsErrorKind.TEMPLATE,
    "UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone": SmsErrorKind.TEMPLATE,
    "UnsupportedOperation.GlobalTemplateToChineseMainlandPhone": SmsErrorKind.TEMPLATE,
    "InvalidParameterValue.TemplateParameterFormatError": SmsErrorKind.TEMPLATE,
    "InvalidParameterValue.TemplateParameterLengthLimit": SmsErrorKind.TEMPLATE,
    "InvalidParameterValue.SdkAppIdNotExist": SmsErrorKind.CREDENTIALS,
    "AuthFailure.SignatureFailure": SmsErrorKind.CREDENTIALS,
    "AuthFailure.SecretIdNotFound": SmsErrorKind.CREDENTIALS,
    "AuthFailure.SignatureExpire": SmsErrorKind.CREDENTIALS,
    "AuthFailure.UnauthorizedOperation": SmsErrorKind.CREDENTIALS,
    "InternalError.Timeout": SmsErrorKind.UNAVAILABLE,
    "InternalError.RequestTimeException": SmsErrorKind.UNAVAILABLE,
    "RequestLimitExceeded": SmsErrorKind.UNAVAILABLE,
}


def kind_of(table: dict[str, SmsErrorKind], code: str) -> SmsErrorKind:
    if code in table:
        return table[code]
    if code.startswith(("InternalError", "isp.")):
        return SmsErrorKind.UNAVAILABLE
    if code.startswith("AuthFailure"):
        return SmsErrorKind.CREDENTIALS
    return SmsErrorKind.PROVIDER_REFUSED
