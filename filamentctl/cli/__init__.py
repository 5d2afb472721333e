"""filamentctl.cli"""
