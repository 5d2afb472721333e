"""filamentctl.tui"""
