"""Time, as the workflows see it.

On AWS this is the system clock. The local cloud installs a :class:`VirtualClock`
so that Wait states, task timeouts and SLA timers of hours or days pass in seconds.
Logic never calls ``datetime.now()``: it is given ``now`` or calls :func:`now`.
"""
