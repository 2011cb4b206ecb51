"""Panel availability: working hours, the aggregator's common free slots, and busy blocks.

One module per part (import the one you need; nothing is re-exported here):

- ``model``: the limits, ``Query``, ``Grid``, panel members and rooms;
- ``roster``: who may be on a panel (and which rooms), with their working hours;
- ``windows``: the search window, working periods and the aggregator query built from them;
- ``free_slots``: the calls (common free slots, busy blocks) and the slots offered.
"""
