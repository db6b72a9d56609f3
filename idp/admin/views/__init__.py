"""The admin pages, one module per page group, all on the `admin` blueprint."""

from idp.admin.views import (  # noqa: F401
    accounts,
    admins,
    audit,
    auth,
    claims,
    clients,
    dashboard,
    deletions,
    events,
    keys,
    merges,
    proposals,
    reveal,
    suggestions,
    tokens,
    wechat_apps,
)
