"""Identifiers that must not leave the site, swapped for placeholders before any LLM call and put back in
the answer the operator sees.

Found by pattern: IPv4 and IPv6 addresses, e-mail addresses, API keys and tokens (`sk-…`, long hex or
base64-like runs, `key=…`/`token=…` values, the configured KIPRIS and LLM keys). Found by name: account
names (the event-log accounts of the incident, passed in by the context builder), which no pattern knows.
The same value always gets the same placeholder (`<IP_1>`, `<EMAIL_2>`, `<ACCOUNT_1>`, `<KEY_1>`), so the
model can still reason that two events concern one address.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
# key=value style secrets in URLs, logs and evidence
KEY_VALUE = re.compile(
    r"(?i)\b(key|api[_-]?key|access[_-]?key|service[_-]?key|token|secret|password|passwd)(\s*[=:]\s*)([^\s&\"',;]{6,})"
    r"|\b(bearer)(\s+)([^\s\"',;]{6,})"
)
# bare tokens: provider prefixes, or 32+ characters of hex / base64url with both letters and digits
BARE_KEY = re.compile(
    r"\b(?:sk|pk|ghp|gho|xox[abp]|glpat)[-_][A-Za-z0-9_-]{12,}"
    r"|\b(?=[A-Za-z0-9+/_-]*\d)(?=[A-Za-z0-9+/_-]*[A-Za-z])[A-Za-z0-9+/_-]{32,}={0,2}"
)
PLACEHOLDER = re.compile(r"<(IP|EMAIL|ACCOUNT|KEY)_(\d+)>")


class Redactor:
    """Redacts text and restores it; one instance per explanation (its table is the only copy)."""

    def __init__(self, accounts: Iterable[str] = (), secrets: Iterable[str] = ()) -> None:
        self._by_value: dict[str, str] = {}
        self._by_placeholder: dict[str, str] = {}
        self._counts: dict[str, int] = {}
        # longest first, so "ops-admin" is not half-replaced by "ops"
        self.accounts = sorted({a for a in accounts if a and len(a) >= 2}, key=len, reverse=True)
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def _placeholder(self, kind: str, value: str) -> str:
        if value not in self._by_value:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            token = f"<{kind}_{self._counts[kind]}>"
            self._by_value[value] = token
            self._by_placeholder[token] = value
        return self._by_value[value]

    @property
    def table(self) -> dict[str, str]:
        """placeholder -> original (kept with the Insight only as counts; never sent anywhere)."""
        return dict(self._by_placeholder)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, self._placeholder("KEY", secret))
        text = KEY_VALUE.sub(self._key_value, text)
        text = EMAIL.sub(lambda m: self._placeholder("EMAIL", m.group(0)), text)
        text = BARE_KEY.sub(lambda m: self._placeholder("KEY", m.group(0)), text)
        text = IPV4.sub(lambda m: self._ip(m.group(0)), text)
        text = IPV6.sub(lambda m: self._ip(m.group(0)), text)
        for account in self.accounts:
            pattern = rf"(?<![\w.-]){re.escape(account)}(?![\w-])"
            text = re.sub(pattern, lambda m: self._placeholder("ACCOUNT", m.group(0)), text)
        return text

    def _key_value(self, match: re.Match[str]) -> str:
        name, separator, value = (part for part in match.groups() if part is not None)
        return f"{name}{separator}{self._placeholder('KEY', value)}"

    def _ip(self, candidate: str) -> str:
        try:
            ipaddress.ip_address(candidate)
        except ValueError:
            return candidate  # a version number or a time like 12:30:00, not an address
        return self._placeholder("IP", candidate)

    def restore(self, text: str) -> str:
        """Placeholders the model repeated become the originals again; unknown ones stay as they are."""
        return PLACEHOLDER.sub(lambda m: self._by_placeholder.get(m.group(0), m.group(0)), text)
