"""The dashboard's home page and what every dashboard page shows around its content."""
