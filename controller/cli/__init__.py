"""`cmkctl`: the command line. app.py builds the typer app; each *_cmd.py module adds its commands."""
