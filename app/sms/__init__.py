"""SMS reminders and replies through Twilio: scheduling, templates, outbox, dispatcher, webhooks."""
