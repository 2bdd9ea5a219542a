"""Insight: a short explanation of an incident (what is probably happening, what to check first).

Always available from rules (`rules`), better with an LLM where the site runs one (`llm`): the context
(`context`) is built from pipewatch's own evidence, redacted (`redaction`) before any call and restored
in the answer, with the matching runbooks (`runbooks`). `service.explain` ties them together and stores
an `Insight` row; `tasks` runs it on its own queue so a slow model never delays detection.
"""
