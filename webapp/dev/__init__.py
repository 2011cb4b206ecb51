"""Development only: the demo organisation and the ``make run`` server (with the local sandbox
aggregator and a job worker). Nothing in production imports this package."""
