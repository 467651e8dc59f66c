"""Navigator tasks: work for a navigator that is not a proactive call.

Replies a patient sent by SMS (a cancellation or rebooking request, a message nobody could
parse), and data-quality follow-ups. The SMS feature writes them; the call queue shows them.
"""
