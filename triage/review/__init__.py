"""The agents' review: who may see what, the queue, the moderation actions and the web pages."""
