#!/usr/bin/env python3
"""Sends examples/first-message.eml through a running relay with Python's smtplib.

    python3 examples/send_first_message.py [HOST:PORT]     (default 127.0.0.1:2525)
"""
import smtplib
import sys
from email import message_from_binary_file, policy
from pathlib import Path

host, _, port = (sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:2525").rpartition(":")
with open(Path(__file__).with_name("first-message.eml"), "rb") as file:
    message = message_from_binary_file(file, policy=policy.SMTP)
with smtplib.SMTP(host, int(port)) as client:
    refused = client.send_message(message)
    print(f"sent; refused recipients: {refused or 'none'}")
