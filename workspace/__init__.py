"""Files a user's assistant writes and reads, addressed as `workspace://{file_id}`."""
