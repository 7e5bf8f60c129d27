"""One module per resource kind; each reads the workbench and records its steps there."""
