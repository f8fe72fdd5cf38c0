"""Provenance checks of mining runs against the tables they were mined from (``hnm-db audit``)."""
