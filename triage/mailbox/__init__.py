"""The mailbox side: IMAP connections, fetching what triage needs, and the intake daemon."""
