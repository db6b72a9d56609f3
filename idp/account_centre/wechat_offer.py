"""Which way of binding WeChat works in this browser. Inside WeChat's own browser it is the
Official Account's web authorization (网页授权): a QR code to scan with the very phone that
shows it makes no sense there. Elsewhere it is the website's QR connect, since the Official
Account's authorize page opens only inside WeChat. When only the other app is registered, the
page says where binding works instead."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _

from idp.wechat.models import WeChatApp
from idp.wechat_login import official_account, website


class WorksIn:
    """Where binding works, when it does not work in this browser."""

    WECHAT = "wechat"  # only an Official Account is registered
    OTHER_BROWSER = "other_browser"  # only the website app is registered


@dataclass(frozen=True)
class BindOffer:
    # The app to bind through in this browser, or None…
    app: WeChatApp | None
    # …and then where binding would work (`WorksIn`).
    works_in: str | None = None


def bind_offer() -> BindOffer | None:
    """None when no app that binds WeChat from a browser is registered."""
    inside = official_account.inside_wechat()
    oa_app = official_account.official_account_app()
    if inside and oa_app is not None:
        return BindOffer(oa_app)
    website_app = website.website_app()
    if not inside and website_app is not None:
        return BindOffer(website_app)
    if oa_app is not None:
        return BindOffer(None, WorksIn.WECHAT)
    if website_app is not None:
        return BindOffer(None, WorksIn.OTHER_BROWSER)
    return None


def works_elsewhere_message(works_in: str) -> str:
    """The explained refusal: why binding is not offered here, and where it works."""
    if works_in == WorksIn.WECHAT:
        return _("WeChat can be added from inside WeChat: open this page in WeChat.")
    return _("WeChat cannot be added in WeChat's own browser: open this page in another "
             "browser, for example on a computer, and scan the QR code with WeChat.")
