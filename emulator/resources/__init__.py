"""Azure Resource Manager resources the emulator serves, one module per resource (the router maps
requests to them)."""
