"""Pure rules of the ranking context: calendar days in a time zone, tallies, ranks, batch days."""
