"""Delivery of SMS codes through a provider: Alibaba Cloud SMS, Tencent Cloud SMS, or the
development `log` sender. An adapter only delivers: the accounts domain decides what to send.

`Purpose` names why a code is sent; configuration maps each purpose to the provider's approved
template (idp/sms/settings.py). `SmsSender.send(phone, purpose, code, minutes)` either returns a
`Delivery` (the provider accepted the message) or raises `SmsError` with a mapped `kind`.
"""

from idp.sms.errors import SmsError, SmsErrorKind
from idp.sms.purposes import Purpose
from idp.sms.senders import Delivery, SmsSender

__all__ = ["Delivery", "Purpose", "SmsError", "SmsErrorKind", "SmsSender"]
