"""filamentctl.core"""
