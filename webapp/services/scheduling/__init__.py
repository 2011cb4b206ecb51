"""Interviews: book, reschedule and cancel them on calendars; read them back; follow changes.

One module per sub-domain (import the one you need; nothing is re-exported here):

- ``content``: what an event says (``Content``), as it travels sealed in job arguments;
- ``access``: who may see and change which interview, and whose calendar holds it;
- ``booking``: book (claiming the slot for the panel and room) and cancel;
- ``rescheduling``: move an interview to a new time;
- ``writes``: the calendar write and delete jobs (idempotent, retried until confirmed);
- ``reading``: interviews with what their events say now;
- ``sync``: changes pushed by the aggregator and the periodic reconciliation;
- ``preferences``: working hours and video provider;
- ``notices``: emailing the candidate that their interview moved or was cancelled.
"""
