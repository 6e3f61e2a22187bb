"""The symbol-table sensor."""
