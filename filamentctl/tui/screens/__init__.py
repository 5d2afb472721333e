"""The dashboard's screens: the dashboard itself, help, and dialogs that return typed results."""
