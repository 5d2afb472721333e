"""The dashboard's widgets: each shows attributes the app sets and posts messages up."""
