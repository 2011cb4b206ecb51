"""Interviewer pools: defining them (``manage``), picking "any N" from one by load
(``picking``) and the ledger of our own bookings the load is counted from (``ledger``)."""
