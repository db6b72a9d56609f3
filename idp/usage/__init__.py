"""Daily usage counters the admin dashboard reads: token issuance by grant, WeChat API calls.

Logins and account creation already have rows of their own (`LoginEvent`, `Account`); these two
figures had none, so they are counted here, one row per (day, metric, label).
"""

from idp.usage.counters import init_app

__all__ = ["init_app"]
