"""The parts of ``LocalStripe``: one module per Stripe resource, and what they share.

``omnistack_core.testing.stripe_server`` is the public face: the server routes each request
to the handler of its resource, and the handlers read and write the state the server holds.
"""
