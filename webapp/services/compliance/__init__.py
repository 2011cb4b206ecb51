"""Compliance: the data inventory, the audit trail, everything stored about a person, subject
export, erasure and retention.

One module per part (import the one you need; nothing is re-exported here):

- ``scope``: the role check and the organisation every lookup is narrowed to;
- ``inventory``: tables and columns with their classification, generated from the models;
- ``audit``: the audit trail's pages, exports and retention;
- ``subjects``: everything stored about a person, candidate lookups, subject export;
- ``erasure``: proposing, confirming and carrying out an erasure.

The inventory and the per-person view are generated from the models' metadata (each column's
``info``), never written by hand, so a new table shows up here as soon as it exists.
"""
