"""``nas auto``: a user's dataset in, a deployable hardware-aware model out, in one command within a time
budget. It inspects the data (``profile``), plans the experiment that suits it (``plan``), gets a latency
table for the device and data shape (``device``), then runs the public pieces in order: search, finalize,
export, re-measure (``run``), keeping its place in ``DIR/auto.json`` so a killed run resumes (``state``).
"""
