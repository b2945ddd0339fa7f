"""`dualsync demo`: two legacy applications move to PostgreSQL while they keep writing."""
