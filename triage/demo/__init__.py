"""``triage demo``: the service end to end on loopback servers, with sample mail.

:mod:`triage.demo.run` sets it up and tears it down; :mod:`triage.demo.imap` starts the IMAP
server (Dovecot, else pymap); :mod:`triage.demo.web` adds the page of replies the demo's SMTP
server received; ``messages/`` holds the sample messages.
"""
