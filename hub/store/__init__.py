"""The database: engines and transactions, the tables and their row types, and the statements
each procedure takes."""
