"""One module per blueprint."""
