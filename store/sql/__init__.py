"""What the SQL backends share: schema, migrations, and the search AST compiled per dialect."""
