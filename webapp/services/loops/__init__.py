"""Interview loops: several sessions (an onsite) scheduled in one step, all or none.

The service functions, each taking (session, [broker, cipher,] sealer, actor, …):

- ``compose.compose_loop``: check a ``LoopPlan`` and store it as a draft loop.
- ``availability.loop_times``: candidate start times with their itineraries, from ONE
  sequenced availability call.
- ``booking.book_loop``: book every session at an offered itinerary, or none; the write job
  (``booking.run_loop_write``) takes the loop back if a session's calendar write fails.
- ``changes.move_loop`` / ``changes.move_session``: reschedule the whole loop or one session;
  a whole-loop move's writes are all or none (``moving.run_loop_move`` takes it back).
- ``changes.cancel_loop`` / ``changes.cancel_session`` (``cancelling``): cancel the whole loop
  or one session; ``ends.end_if_done`` ends a loop with its last live session, by any path.
- ``ordinary``: the interview page's and API's move/cancel of a loop's session, by its rules.
- ``reading.view_loop``: a loop as its itinerary (sessions, people, rooms, times).
"""
