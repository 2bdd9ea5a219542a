"""A client for the KIPRIS Plus Open API (both URL families), its XML parsing and its Redis-backed guards."""
