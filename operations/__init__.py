"""What operators do through the admin API: the audit log of their actions."""
