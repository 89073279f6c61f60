"""Config -> components for the parts of the strategy beyond vaults, plans and data: each module builds one
feature for the roles that have it and returns the stack outputs it adds (`pgf_backup.stacks` calls them)."""
