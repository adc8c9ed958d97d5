"""The store wing: what is on local disk, and whether it is right.

``files`` writes (partials, atomic publish, pins, quarantine), ``layout`` names
every path, ``trust`` says what the right bytes are, ``intake`` is the one door
through which bytes enter, ``verifier`` re-checks what is there.  Nothing is
imported here, so loading one part never loads the others.
"""
