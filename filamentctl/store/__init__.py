"""filamentctl.store"""
