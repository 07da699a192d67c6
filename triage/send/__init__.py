"""Sending approved replies: compose the message safely, then the outbox, then SMTP."""
