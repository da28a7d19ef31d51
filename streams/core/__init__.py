"""The pure negotiation core: decide, evolve, the joint demand, offer evaluation, audience views.

Only the standard library and ``schemas`` may be imported here (a test enforces it). Time and
ids come in as arguments.
"""
