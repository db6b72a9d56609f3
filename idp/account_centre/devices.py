"""A readable device name from a User-Agent (browser and OS), with ua-parser (uap-core's
regexes, maintained): shown to the user, never used to decide anything."""

from __future__ import annotations

from functools import lru_cache

from ua_parser import parse


@lru_cache(maxsize=512)
def describe_device(user_agent: str | None) -> str:
    if not user_agent:
        return ""
    parsed = parse(user_agent[:255])
    browser = parsed.user_agent.family if parsed.user_agent else ""
    system = parsed.os.family if parsed.os else ""
    if parsed.os and parsed.os.major:
        system = f"{system} {parsed.os.major}"
    parts = [part for part in (browser, system) if part and part != "Other"]
    return " · ".join(parts) or user_agent[:60]
