"""filamentctl.service"""
