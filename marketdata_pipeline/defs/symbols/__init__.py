"""The symbol-table sensor and the recovery of its interrupted history runs."""
