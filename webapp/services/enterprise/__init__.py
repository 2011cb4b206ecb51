"""Enterprise Connect: an IT admin authorizes a service account for the organisation's domain
once, then links its mailboxes in bulk (reference §2).

Flow and states of one mailbox request::

    queued ──send_batches──▶ pending ──callback(code)──▶ code queued ──redeem_code──▶ linked
                                │    └──callback(error)─▶ failed ──retry──▶ queued    └─▶ failed
                                └── 429 / 5xx: back to queued and sent again later

* Requests go out in batches of at most ``sending.BATCH_SIZE``. Before a batch is sent its
  rows are *claimed* (an atomic UPDATE, so two workers never send the same row) and each gets a
  fresh one-time ``state`` whose SHA-256 is committed first; ``sent_at`` is committed when the
  aggregator accepted the batch. A worker that dies between batches leaves only ``queued`` rows
  behind; one that dies mid-batch leaves claimed rows, which are released after
  ``sending.CLAIM_LEASE`` and sent again with a new state (an answer to the old state is then
  refused).
* The callback comes to a URL with the request's AES-GCM-sealed reference and must carry the
  row's unused one-time state (in ``authorization.state`` or at the top level: where it comes
  back is unconfirmed). A ``Cronofy-HMAC-SHA256`` header, when present, must be right (the
  view checks it); without one — no source confirms this callback is signed — the reference
  and state authenticate it, and it is audited and counted on the domain. The state is marked
  used by an atomic UPDATE *before* the code is queued, so a replay never causes a second
  exchange. The callback calls nothing at the aggregator: the code goes, sealed under the app's
  token keys and bound to the row's state, to the ``enterprise.redeem_code`` job, which waits
  for the organisation's background budget in a job worker (not a web thread) and repeats the
  row's exact ``callback_url``. A code not redeemed within ``redemption.CODE_PATIENCE`` fails
  the mailbox (``code_not_redeemed``).
* A linked mailbox becomes the ProfileLink (mode ``enterprise``) of the organisation user with
  that email. Emails without a Rendezvous user are rejected up front, so every link has a user.
* Rooms travel the same way (a request of kind ``room``, asked for free/busy only). A linked room
  keeps just its aggregator ``sub`` for availability queries; its tokens are not kept, and
  unlinking revokes the sub.

The package, by sub-domain: :mod:`.domains` (connecting a domain's service account),
:mod:`.mailboxes` and :mod:`.rooms` (choosing what to link), :mod:`.sending` (the batches, a
background job), :mod:`.callbacks` (the aggregator's answer for each request),
:mod:`.redemption` (its code redeemed and the mailbox linked, a background job) and
:mod:`.teardown` (unlinking, disconnecting, resetting).
"""
