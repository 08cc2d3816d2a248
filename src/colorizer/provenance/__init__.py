"""Provenance of outputs (issue 24): IPTC/XMP records, C2PA Content Credentials, inspection."""
