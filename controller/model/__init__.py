"""Pure value types shared by every layer. No I/O, no Azure, no clock reads."""
