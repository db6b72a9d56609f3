"""Which of a purpose's templates a number needs. Alibaba Cloud and Tencent Cloud approve a
template either for mainland China or for international numbers — Hong Kong (+852), Macau
(+853), Taiwan and every other country — and refuse to send one to the other kind
(`isv.DOMESTIC_NUMBER_NOT_SUPPORTED`, `UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone`,
`…GlobalTemplateToChineseMainlandPhone`), so each purpose has a template per region."""

from __future__ import annotations

from enum import StrEnum

import phonenumbers

MAINLAND_COUNTRY_CODE = 86


class Region(StrEnum):
    MAINLAND = "mainland"
    INTERNATIONAL = "international"  # +852, +853, +886 and every other country


def region_of(phone: str) -> Region:
    """The region of an E.164 number, by its country calling code (phonenumbers)."""
    try:
        country_code = phonenumbers.parse(phone, None).country_code
    except phonenumbers.NumberParseException:
        country_code = MAINLAND_COUNTRY_CODE if phone.startswith("+86") else None
    return Region.MAINLAND if country_code == MAINLAND_COUNTRY_CODE else Region.INTERNATIONAL


def region_of_country_code(country_code: int) -> Region:
    return Region.MAINLAND if country_code == MAINLAND_COUNTRY_CODE else Region.INTERNATIONAL
