"""filamentctl.hw"""
