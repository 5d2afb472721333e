"""filamentctl.sinks"""
