"""The hub's database: engines and transactions, one row type per table, and the statements
each procedure takes."""
