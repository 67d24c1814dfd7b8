"""tasks shipped inside hive_nornir (setuptools package-dir mapping)."""
