"""The bundled settings, installed as `netjail.configs` (package data; see netjail/utils/resources.py)."""
